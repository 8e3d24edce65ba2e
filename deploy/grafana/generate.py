"""Write the Grafana dashboards of drt-dispatch as JSON (dashboards as code).

    python deploy/grafana/generate.py            # rewrites deploy/grafana/dashboards/drt/*.json

The JSON files are committed, so Grafana needs nothing but them;
tests/unit/deploy/test_grafana.py fails when they differ from this script's output.

Panels on metrics the dispatcher does not export yet say "(proposed)" in their
title; deploy/README.md lists those metrics. They show "No data" until then.
Queries use only Grafana's ``$__rate_interval`` and ``$__timeFilter(...)``, which
tests/integration/test_observability.py substitutes before running them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "dashboards" / "drt"

PROM = {"type": "prometheus", "uid": "drt-prometheus"}
PG = {"type": "grafana-postgresql-datasource", "uid": "drt-postgres"}
PROPOSED = " (proposed)"
PROPOSED_NOTE = (
    " Needs a metric the dispatcher does not export yet: see 'Proposed metrics' in "
    "deploy/README.md."
)
#: Centre of the Rendsburg service area (DRT_DISPATCH__SERVICE_AREA).
MAP_CENTRE = (54.30, 9.66)

Panel = dict[str, Any]


def prom(expr: str, legend: str = "", ref: str = "A", *, instant: bool = False) -> Panel:
    return {
        "refId": ref,
        "datasource": PROM,
        "editorMode": "code",
        "expr": expr,
        "legendFormat": legend or "__auto",
        "range": not instant,
        "instant": instant,
    }


def sql(query: str, ref: str = "A", fmt: str = "table") -> Panel:
    return {
        "refId": ref,
        "datasource": PG,
        "editorMode": "code",
        "format": fmt,
        "rawQuery": True,
        "rawSql": " ".join(query.split()),
    }


class Layout:
    """Places panels left to right on Grafana's 24-column grid."""

    def __init__(self) -> None:
        self.x = 0
        self.y = 0
        self.row_h = 0
        self.next_id = 1
        self.panels: list[Panel] = []

    def _place(self, panel: Panel, w: int, h: int) -> None:
        if self.x + w > 24:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        panel["id"] = self.next_id
        self.next_id += 1
        panel["gridPos"] = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.x += w
        self.row_h = max(self.row_h, h)
        self.panels.append(panel)

    def row(self, title: str) -> None:
        if self.x:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        self._place({"type": "row", "title": title, "collapsed": False, "panels": []}, 24, 1)
        self.x, self.y, self.row_h = 0, self.y + 1, 0

    def add(self, panel: Panel, w: int, h: int) -> None:
        self._place(panel, w, h)


def _base(kind: str, title: str, targets: list[Panel], description: str) -> Panel:
    proposed = title.endswith(PROPOSED)
    return {
        "type": kind,
        "title": title,
        "description": description + (PROPOSED_NOTE if proposed else ""),
        "datasource": targets[0]["datasource"],
        "targets": targets,
    }


def timeseries(
    title: str,
    targets: list[Panel],
    description: str,
    unit: str = "short",
    *,
    stack: bool = False,
    bars: bool = False,
    minimum: float | None = 0,
) -> Panel:
    panel = _base("timeseries", title, targets, description)
    custom: dict[str, Any] = {
        "drawStyle": "bars" if bars else "line",
        "lineWidth": 1,
        "fillOpacity": 60 if stack or bars else 10,
        "showPoints": "never",
        "spanNulls": True,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
    }
    defaults: dict[str, Any] = {"unit": unit, "custom": custom}
    if minimum is not None:
        defaults["min"] = minimum
    panel["fieldConfig"] = {"defaults": defaults, "overrides": []}
    panel["options"] = {
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    return panel


def stat(
    title: str,
    targets: list[Panel],
    description: str,
    unit: str = "short",
    thresholds: list[tuple[float | None, str]] | None = None,
) -> Panel:
    panel = _base("stat", title, targets, description)
    steps = [{"value": v, "color": c} for v, c in (thresholds or [(None, "green")])]
    panel["fieldConfig"] = {
        "defaults": {
            "unit": unit,
            "decimals": 1 if unit in ("percentunit", "s") else 0,
            "thresholds": {"mode": "absolute", "steps": steps},
        },
        "overrides": [],
    }
    panel["options"] = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "colorMode": "value",
        "graphMode": "area",
        "textMode": "value_and_name",
        "justifyMode": "auto",
        "orientation": "auto",
    }
    return panel


def table(title: str, targets: list[Panel], description: str) -> Panel:
    panel = _base("table", title, targets, description)
    panel["fieldConfig"] = {"defaults": {}, "overrides": []}
    panel["options"] = {"showHeader": True, "cellHeight": "sm", "footer": {"show": False}}
    return panel


def _marker_layer(name: str, ref: str, color: str, symbol: str, label: str) -> Panel:
    return {
        "type": "markers",
        "name": name,
        "tooltip": True,
        "filterData": {"id": "byRefId", "options": ref},
        "location": {"mode": "coords", "latitude": "lat", "longitude": "lon"},
        "config": {
            "showLegend": True,
            "style": {
                "color": {"fixed": color},
                "opacity": 0.85,
                "size": {"fixed": 7, "min": 4, "max": 15},
                "symbol": {"mode": "fixed", "fixed": f"img/icons/marker/{symbol}.svg"},
                "symbolAlign": {"horizontal": "center", "vertical": "center"},
                "text": {"mode": "field", "field": label, "fixed": ""},
                "textConfig": {
                    "fontSize": 10,
                    "offsetX": 0,
                    "offsetY": -12,
                    "textAlign": "center",
                    "textBaseline": "bottom",
                },
            },
        },
    }


#: Vehicles on shift with their state, as the dispatcher last stored them.
SQL_VEHICLES = """
SELECT vehicle_id, lat, lon,
       CASE WHEN jsonb_array_length(data->'stops') > 0
              OR jsonb_array_length(data->'onboard') > 0 THEN 'busy' ELSE 'idle' END AS state,
       jsonb_array_length(data->'onboard') AS onboard,
       jsonb_array_length(data->'stops') AS stops,
       updated_at
FROM vehicles WHERE active ORDER BY vehicle_id
"""


#: Open requests of one status (a constant) at their pickup place.
SQL_OPEN_RIDES = """
SELECT request_id, status, vehicle_id,
       (data->'origin'->>'lat')::float8 AS lat,
       (data->'origin'->>'lon')::float8 AS lon,
       (data->>'seats')::int AS seats
FROM rides WHERE status = '@status' ORDER BY request_id
"""


def sql_open_rides(status: str) -> str:
    assert status.isalpha(), status
    return SQL_OPEN_RIDES.replace("@status", status)


SQL_OPEN_TABLE = """
SELECT request_id, status, vehicle_id, (data->>'seats')::int AS seats,
       to_timestamp((data->>'received_at')::float8) AS received,
       to_timestamp((data->'promised_pickup'->>0)::float8) AS promised_from,
       to_timestamp((data->'promised_pickup'->>1)::float8) AS promised_to,
       to_timestamp((data->>'pickup_eta')::float8) AS pickup_eta
FROM rides WHERE status IN ('pending', 'offered', 'onboard')
ORDER BY status, promised_from NULLS FIRST, request_id LIMIT 200
"""

SQL_REJECTIONS = """
SELECT created_at AS time, request_id, reason, payload->>'message' AS message
FROM outcomes WHERE kind = 'rejected' AND $__timeFilter(created_at)
ORDER BY created_at DESC LIMIT 100
"""

SQL_DEAD_LETTERS = """
SELECT created_at AS time, original_topic, original_partition, original_offset,
       error_type, left(reason, 300) AS reason
FROM dead_letters WHERE $__timeFilter(created_at)
ORDER BY created_at DESC LIMIT 100
"""

SQL_OUTBOX = "SELECT count(*) AS unpublished FROM outbox WHERE published_at IS NULL"


def _q(q: float, metric: str, by: str = "") -> str:
    group = f"{by}, le" if by else "le"
    return f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket[$__rate_interval])))"


def operations() -> dict[str, Any]:
    lay = Layout()
    answered = "drt_requests_answered_total"
    lay.row("Service")
    lay.add(
        stat(
            "Service rate (1 h)",
            [
                prom(
                    f'sum(increase({answered}{{outcome="offered"}}[1h]))'
                    f" / sum(increase({answered}[1h]))"
                )
            ],
            "Share of the ride requests answered in the last hour that got an offer.",
            "percentunit",
            [(None, "red"), (0.8, "orange"), (0.9, "green")],
        ),
        4,
        5,
    )
    lay.add(
        stat(
            "Requests answered (1 h)",
            [prom(f"sum(increase({answered}[1h]))")],
            "Offers plus rejections published in the last hour.",
        ),
        4,
        5,
    )
    lay.add(
        stat(
            "Rejected (1 h)",
            [prom(f'sum(increase({answered}{{outcome="rejected"}}[1h])) or vector(0)')],
            "Ride requests rejected in the last hour, all reasons.",
            thresholds=[(None, "green"), (1, "orange"), (10, "red")],
        ),
        4,
        5,
    )
    lay.add(
        stat(
            "Open rides",
            [prom("sum by (status) (drt_open_requests)", "{{status}}")],
            "Rides not finished: pending (waiting for a batch), offered (promised, "
            "not yet picked up), onboard.",
        ),
        6,
        5,
    )
    lay.add(
        stat(
            "Pickup promises kept (1 h)",
            [
                prom(
                    'sum(increase(drt_pickup_promises_total{result="kept"}[1h]))'
                    " / sum(increase(drt_pickup_promises_total[1h]))"
                )
            ],
            "Share of the pickups in the last hour inside the window promised in the offer.",
            "percentunit",
            [(None, "red"), (0.9, "orange"), (0.97, "green")],
        ),
        3,
        5,
    )
    lay.add(
        stat(
            "Rides moved (1 h)",
            [prom("sum(increase(drt_rides_reassigned_total[1h]))")],
            "Confirmed rides offered again on another vehicle in the last hour: a later"
            " plan serves them better (DRT_DISPATCH__REASSIGN_LEAD_S), or their vehicle"
            " went out of service. Each passenger is told; the promised window stays"
            " unless the vehicle went out of service.",
        ),
        3,
        5,
    )
    lay.add(
        timeseries(
            "Answers per minute",
            [prom(f"sum by (outcome) (rate({answered}[$__rate_interval])) * 60", "{{outcome}}")],
            "Offers and rejections published per minute.",
            "short",
            stack=True,
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Rejections by reason",
            [
                prom(
                    f'sum by (reason) (rate({answered}{{outcome="rejected"}}[$__rate_interval]))'
                    " * 60",
                    "{{reason}}",
                )
            ],
            "Rejections per minute. no_vehicle: no vehicle reaches the passenger in time "
            "(fleet too small or off shift); outside_area / outside_hours: request outside "
            "the service; capacity: more seats than any vehicle; invalid / duplicate: "
            "bad input.",
            "short",
            stack=True,
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Service rate (15 min window)",
            [
                prom(
                    f'sum(rate({answered}{{outcome="offered"}}[15m])) / sum(rate({answered}[15m]))',
                    "service rate",
                )
            ],
            "Share of requests answered with an offer, over a sliding 15-minute window.",
            "percentunit",
        ),
        8,
        8,
    )

    lay.row("Passenger experience")
    lay.add(
        timeseries(
            "Wait for pickup",
            [
                prom(_q(0.5, "drt_pickup_wait_seconds"), "p50", "A"),
                prom(_q(0.9, "drt_pickup_wait_seconds"), "p90", "B"),
            ],
            "Time from the requested (or, for immediate bookings, the request) time to "
            "the actual pickup.",
            "s",
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Pickup against the promise",
            [
                prom(_q(0.5, "drt_pickup_promise_deviation_seconds"), "p50", "A"),
                prom(_q(0.95, "drt_pickup_promise_deviation_seconds"), "p95", "B"),
                prom(
                    'sum(rate(drt_pickup_promises_total{result="broken"}[$__rate_interval]))'
                    " * 3600",
                    "broken promises per hour",
                    "C",
                ),
            ],
            "Actual pickup minus the end of the promised pickup window: above 0 the "
            "vehicle came late and the promise was broken.",
            "s",
            minimum=None,
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Detour factor",
            [
                prom(_q(0.5, "drt_ride_detour_ratio"), "p50", "A"),
                prom(_q(0.9, "drt_ride_detour_ratio"), "p90", "B"),
            ],
            "In-vehicle time divided by the direct travel time, per completed ride "
            "(1 = no detour; the limit is DRT_DISPATCH__RIDE_ALPHA plus beta).",
            "short",
            minimum=1,
        ),
        8,
        8,
    )

    lay.row("Fleet")
    lay.add(
        timeseries(
            "Fleet state",
            [prom("sum by (state) (drt_vehicles)", "{{state}}")],
            "Vehicles on shift with stops or passengers (busy), on shift without (idle), "
            "and known but off shift.",
            stack=True,
        ),
        6,
        8,
    )
    lay.add(
        timeseries(
            "Open rides by status",
            [prom("sum by (status) (drt_open_requests)", "{{status}}")],
            "Pending, offered and onboard rides.",
            stack=True,
        ),
        6,
        8,
    )
    lay.add(
        timeseries(
            "Occupancy and pooling",
            [
                prom(
                    "sum(drt_passengers_onboard) / sum(drt_seats_on_shift)",
                    "occupancy (seats used)",
                    "A",
                ),
                prom(
                    'sum(rate(drt_rides_completed_total{pooled="true"}[1h]))'
                    " / sum(rate(drt_rides_completed_total[1h]))",
                    "pooling rate (1 h)",
                    "B",
                ),
            ],
            "Occupancy: passengers on board over the seats of vehicles on shift. Pooling "
            "rate: share of completed rides that shared the vehicle with another passenger.",
            "percentunit",
        ),
        6,
        8,
    )
    lay.add(
        timeseries(
            "Vehicle-km per hour",
            [
                prom(
                    "sum by (occupied) (rate(drt_vehicle_distance_meters_total[$__rate_interval]))"
                    " * 3.6",
                    "occupied={{occupied}}",
                    "A",
                ),
            ],
            "Kilometres driven per hour, with passengers on board (occupied=true) and "
            "empty (occupied=false: deadheading to pickups and the depot).",
            "short",
            stack=True,
        ),
        6,
        8,
    )

    lay.row("Live map")
    geomap = _base(
        "geomap",
        "Vehicles and open requests",
        [
            sql(SQL_VEHICLES, "vehicles"),
            sql(sql_open_rides("pending"), "pending"),
            sql(sql_open_rides("offered"), "offered"),
        ],
        "From PostgreSQL: vehicles on shift at their last reported position (squares), "
        "and the pickup places of rides waiting for a batch (red) or offered and not "
        "yet picked up (orange). Hover for details.",
    )
    geomap["fieldConfig"] = {"defaults": {}, "overrides": []}
    geomap["options"] = {
        "view": {"id": "coords", "lat": MAP_CENTRE[0], "lon": MAP_CENTRE[1], "zoom": 11},
        "controls": {"showZoom": True, "mouseWheelZoom": True, "showAttribution": True},
        "basemap": {"type": "default", "name": "Basemap", "config": {}},
        "tooltip": {"mode": "details"},
        "layers": [
            _marker_layer("Vehicles", "vehicles", "blue", "square", "vehicle_id"),
            _marker_layer("Pending requests", "pending", "red", "circle", "request_id"),
            _marker_layer("Offered requests", "offered", "orange", "circle", "request_id"),
        ],
    }
    lay.add(geomap, 14, 16)
    lay.add(
        table(
            "Open rides",
            [sql(SQL_OPEN_TABLE)],
            "Rides not finished, with the promised pickup window and the current ETA.",
        ),
        10,
        16,
    )
    lay.add(
        table(
            "Recent rejections",
            [sql(SQL_REJECTIONS)],
            "Rejections in the dashboard's time range, newest first, with the message "
            "the passenger got.",
        ),
        24,
        8,
    )
    return dashboard(
        "drt-operations",
        "DRT operations",
        "What passengers and the fleet experience: answers, rejections, promises, "
        "fleet state and a live map.",
        lay.panels,
        ["drt", "operations"],
        {"title": "DRT system", "url": "/d/drt-system"},
    )


def system() -> dict[str, Any]:
    lay = Layout()
    lay.row("Health")
    lay.add(
        stat(
            "Scraped",
            [prom('up{job="drt-dispatcher"}', "{{instance}}")],
            "1 when Prometheus reaches the dispatcher's metrics port.",
            thresholds=[(None, "red"), (1, "green")],
        ),
        4,
        5,
    )
    lay.add(
        stat(
            "Kafka and PostgreSQL reachable",
            [prom("drt_dispatcher_healthy", "{{instance}}")],
            "drt_dispatcher_healthy: 0 while the dispatcher retries after a failure.",
            thresholds=[(None, "red"), (1, "green")],
        ),
        5,
        5,
    )
    lay.add(
        stat(
            "Cycle errors (1 h)",
            [prom("sum(increase(drt_cycle_errors_total[1h])) or vector(0)")],
            "Dispatcher cycles that failed and were replayed.",
            thresholds=[(None, "green"), (1, "orange")],
        ),
        5,
        5,
    )
    lay.add(
        stat(
            "Dead letters (1 h)",
            [prom("sum(increase(drt_dead_letters_total[1h])) or vector(0)")],
            "Input messages sent to the dead-letter topic.",
            thresholds=[(None, "green"), (1, "orange")],
        ),
        5,
        5,
    )
    lay.add(
        stat(
            "Outbox backlog",
            [sql(SQL_OUTBOX)],
            "Messages committed to PostgreSQL but not yet acknowledged by Kafka. Stays "
            "near 0; growth means Kafka is unreachable.",
            thresholds=[(None, "green"), (100, "orange")],
        ),
        5,
        5,
    )

    lay.row("Latency and throughput")
    lay.add(
        timeseries(
            "Request to answer",
            [
                prom(_q(0.5, "drt_request_to_answer_seconds"), "p50", "A"),
                prom(_q(0.95, "drt_request_to_answer_seconds"), "p95", "B"),
                prom(_q(0.99, "drt_request_to_answer_seconds"), "p99", "C"),
            ],
            "From receiving a ride request to publishing its offer or rejection: batch "
            "window plus solve plus PostgreSQL and Kafka.",
            "s",
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Batches",
            [
                prom(_q(0.5, "drt_batch_size_requests"), "size p50", "A"),
                prom(_q(0.95, "drt_batch_size_requests"), "size p95", "B"),
                prom(
                    "sum(rate(drt_batch_size_requests_count[$__rate_interval])) * 60",
                    "batches per minute",
                    "C",
                ),
            ],
            "New requests per solved batch, and batches per minute.",
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Input events per second",
            [
                prom(
                    "sum by (type) (rate(drt_events_received_total[$__rate_interval]))",
                    "{{type}}",
                    "A",
                ),
                prom(
                    "sum(rate(drt_duplicate_events_total[$__rate_interval]))",
                    "duplicates skipped",
                    "B",
                ),
            ],
            "Events accepted by type, and replayed events skipped by their event id.",
            "short",
            stack=False,
        ),
        8,
        8,
    )

    lay.row("Solver")
    lay.add(
        timeseries(
            "Solver duration",
            [
                prom(_q(0.5, "drt_solver_duration_seconds", "solver"), "{{solver}} p50", "A"),
                prom(_q(0.95, "drt_solver_duration_seconds", "solver"), "{{solver}} p95", "B"),
            ],
            "Wall time of a solve including the process hop; compare with "
            "DRT_SOLVER__TIME_LIMIT_S.",
            "s",
        ),
        6,
        8,
    )
    lay.add(
        timeseries(
            "Time-limit hits",
            [
                prom(
                    "sum(rate(drt_solver_time_limit_hits_total[$__rate_interval]))"
                    " / sum(rate(drt_solver_duration_seconds_count[$__rate_interval]))",
                    "share of solves",
                )
            ],
            "Share of solves stopped by the time limit (alert above 80 % for 15 min).",
            "percentunit",
        ),
        6,
        8,
    )
    lay.add(
        timeseries(
            "Fallbacks to insertion",
            [
                prom(
                    "sum by (cause) (increase(drt_solver_fallbacks_total[$__rate_interval]))"
                    " or vector(0)",
                    "{{cause}}",
                )
            ],
            "Batches planned by the insertion heuristic because OR-Tools timed out, "
            "failed or found no solution.",
            bars=True,
        ),
        6,
        8,
    )
    lay.add(
        timeseries(
            "Objective of the last plan",
            [prom("drt_solver_objective", "objective")],
            "The solver's objective (lower is better); jumps follow demand.",
            minimum=None,
        ),
        6,
        8,
    )

    lay.row("Kafka and PostgreSQL")
    lay.add(
        timeseries(
            "Consumer lag",
            [
                prom(
                    "sum by (topic, partition) (drt_kafka_consumer_lag_messages)",
                    "{{topic}}[{{partition}}]",
                )
            ],
            "Input messages not yet consumed, per partition (updated every 5 s).",
        ),
        6,
        8,
    )
    lay.add(
        timeseries(
            "Cycle errors by cause",
            [
                prom(
                    "sum by (cause) (increase(drt_cycle_errors_total[$__rate_interval]))"
                    " or vector(0)",
                    "{{cause}}",
                )
            ],
            "Failed cycles by exception type (StoreError, TransportError, OSError).",
            bars=True,
        ),
        6,
        8,
    )
    lay.add(
        timeseries(
            "Dead letters by error type",
            [
                prom(
                    "sum by (error_type) (increase(drt_dead_letters_total[$__rate_interval]))"
                    " or vector(0)",
                    "{{error_type}}",
                )
            ],
            "Input messages the dispatcher could not accept.",
            bars=True,
        ),
        6,
        8,
    )
    lay.add(
        timeseries(
            "PostgreSQL pool",
            [prom("drt_postgres_pool_connections_in_use", "in use")],
            "Connections in use; the pool holds at most DRT_DATABASE__POOL_MAX.",
        ),
        6,
        8,
    )
    lay.add(
        table(
            "Recent dead letters",
            [sql(SQL_DEAD_LETTERS)],
            "From the dead_letters table, newest first; the full message is on the "
            "dead-letter topic.",
        ),
        24,
        8,
    )
    return dashboard(
        "drt-system",
        "DRT system",
        "The dispatcher's machinery: latency, solver, Kafka, PostgreSQL, errors.",
        lay.panels,
        ["drt", "system"],
        {"title": "DRT operations", "url": "/d/drt-operations"},
    )


def dashboard(
    uid: str,
    title: str,
    description: str,
    panels: list[Panel],
    tags: list[str],
    link: dict[str, str],
) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": tags,
        "timezone": "browser",
        "editable": False,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "templating": {"list": []},
        "annotations": {"list": []},
        "links": [
            {"type": "link", "title": link["title"], "url": link["url"], "icon": "dashboard"}
        ],
        "panels": panels,
    }


def render() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {
        f"{d['uid']}.json": json.dumps(d, indent=2, ensure_ascii=False) + "\n"
        for d in (operations(), system())
    }


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        (OUT / name).write_text(text, encoding="utf-8")
        sys.stdout.write(f"wrote {OUT / name}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
