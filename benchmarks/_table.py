"""The benchmarks' one table printer: left-aligned columns, two spaces apart, a blank line before."""


def print_table(header, rows):
    table = [tuple(str(c) for c in r) for r in [header, *rows]]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    print()
    for r in table:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
