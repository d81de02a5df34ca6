"""make bench rewrites docs/benchmarks.md: the sections other benches wrote stay."""
from scripts.bench import report


def test_a_section_another_bench_wrote_survives_the_rewrite(tmp_path, monkeypatch):
    doc = tmp_path / "benchmarks.md"
    monkeypatch.setattr(report, "DOC", doc)
    console = report.KEPT_SECTIONS[0]
    doc.write_text(f"# Benchmarks\n\nold figures\n\n{console}\n\n| a | 845 ms |\n\n## Later\n\nmore\n")

    assert report.kept_sections() == f"\n{console}\n\n| a | 845 ms |\n"
    doc.unlink()
    assert report.kept_sections() == ""
