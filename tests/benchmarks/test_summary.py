"""The arithmetic of ``make bench``: medians, capacity searches, the Markdown table."""

from __future__ import annotations

import pytest

from benchmarks.summary import CapacitySearch, get, markdown_table, spread


def test_spread_is_the_median_with_its_range_leaving_out_missing_runs() -> None:
    figure = spread([3.0, None, 1.0, 2.0])
    assert figure is not None
    assert (figure.median, figure.low, figure.high, figure.runs) == (2.0, 1.0, 3.0, 3)
    assert figure.as_json() == {"median": 2.0, "min": 1.0, "max": 3.0, "runs": 3}
    assert figure.text("us") == "2 (1-3) us"
    assert spread([None, None]) is None


def _capacity(limit: int) -> tuple[list[int], CapacitySearch]:
    tried: list[int] = []

    def probe(load: int) -> tuple[bool, str]:
        tried.append(load)
        return load <= limit, f"limit {limit}"

    return tried, CapacitySearch(probe, start=100, granularity=25, ceiling=3200)


@pytest.mark.parametrize("limit", [0, 30, 99, 100, 430, 1000, 5000])
def test_a_first_search_finds_the_largest_passing_multiple_of_the_granularity(limit: int) -> None:
    tried, search = _capacity(limit)
    found = search.first()
    assert found == min(3200, limit // 25 * 25)
    assert all(step.passed == (step.load <= limit) for step in search.steps)
    assert len(tried) == len(set(tried))  # no load is run twice


@pytest.mark.parametrize(
    ("previous", "limit", "found"),
    [(400, 430, 425), (400, 460, 450), (400, 380, 375), (400, 300, 300), (400, 20, 0)],
)
def test_a_later_search_steps_from_the_previous_answer(
    previous: int, limit: int, found: int
) -> None:
    tried, search = _capacity(limit)
    assert search.again(previous) == found
    assert tried[0] == previous
    assert len(tried) == len(set(tried))


def test_a_search_refuses_impossible_bounds() -> None:
    with pytest.raises(ValueError, match="capacity search"):
        CapacitySearch(lambda load: (True, ""), start=10, granularity=25, ceiling=100)


def test_get_follows_a_dotted_path_and_gives_none_for_a_missing_key() -> None:
    figures = {"relay": {"us": 7.5}}
    assert get(figures, "relay.us") == 7.5
    assert get(figures, "relay.nothing") is None
    assert get(figures, "relay.us.deeper") is None


def test_the_table_has_a_title_a_row_per_figure_and_the_notes() -> None:
    text = markdown_table([("calls", "10 (9-11)")], title="rtcgw", notes=["machine: x"])
    assert text.splitlines() == [
        "### rtcgw",
        "",
        "| figure | measured |",
        "| --- | --- |",
        "| calls | 10 (9-11) |",
        "",
        "machine: x",
    ]
