"""gateway.migration.burndown: the burn-down as inline SVG."""

from __future__ import annotations

import re
from xml.etree import ElementTree

from gateway.migration.burndown import HEIGHT, PALETTE, svg

DAY = 86400.0
DAYS = [20_000 * DAY + i * DAY for i in range(30)]
NS = "{http://www.w3.org/2000/svg}"


def test_one_polyline_per_group_with_a_point_per_day() -> None:
    lines = {"payments": [0] * 28 + [3, 7], "web": [1] * 30}
    root = ElementTree.fromstring(svg(DAYS, lines))  # well-formed XML
    series = root.findall(f"{NS}g")
    assert [g.get("data-group") for g in series] == ["payments", "web"]
    points = series[0].find(f"{NS}polyline")
    assert points is not None
    coordinates = [tuple(map(float, p.split(","))) for p in points.get("points", "").split()]
    assert len(coordinates) == 30
    assert coordinates[-1][1] < coordinates[-2][1] < coordinates[0][1]  # higher is more
    assert points.get("stroke") == PALETTE[0]
    # the y axis tops at a round number with a whole-number middle
    labels = [t.text for t in root.iter(f"{NS}text")]
    assert labels[:3] == ["0", "5", "10"]
    assert labels[3:] == ["Oct 04", "Oct 19", "Nov 02"]
    # each non-zero day has a point with its figure
    titles = [t.text for t in series[0].iter(f"{NS}title")]
    assert titles == ["payments: 3 on Nov 01", "payments: 7 on Nov 02"]


def test_empty_and_hostile_input() -> None:
    quiet = ElementTree.fromstring(svg(DAYS, {}))
    assert [t.text for t in quiet.iter(f"{NS}text")][:2] == ["0", "1"]
    hostile = '"><script>x</script>'
    text = svg(DAYS, {hostile: [1] * 30})
    assert "<script>" not in text
    root = ElementTree.fromstring(text)
    assert root.find(f"{NS}g") is not None
    assert root.get("viewBox") == f"0 0 600 {HEIGHT}"
    assert re.search(r'data-group="&quot;&gt;&lt;script&gt;', text)
