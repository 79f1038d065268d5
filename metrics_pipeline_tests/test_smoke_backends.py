from metrics_pipeline_tests.conftest import values


def test_new_users_day(sources, materialize):
    sources.insert("users",
                   {"id": "u1", "created_at": "2026-01-05 00:00:00"},
                   {"id": "u2", "created_at": "2026-01-05 23:59:59.999999", "country": None},
                   {"id": "u3", "created_at": "2026-01-06 00:00:00.000000"})
    run = materialize(sources, "day", "2026-01-04", "2026-01-06")
    assert run.success
    assert values(sources, "new_users", "day") == {"2026-01-04": 0, "2026-01-05": 2, "2026-01-06": 1}
    assert values(sources, "new_users", "day", "country") == {
        ("2026-01-05", "US"): 1, ("2026-01-05", "unknown"): 1, ("2026-01-06", "US"): 1}
