"""Command-line interface (placeholder until explain lands)."""
def main() -> int:
    return 0
