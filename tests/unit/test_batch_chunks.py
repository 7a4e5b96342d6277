"""How batch mode cuts a wave into jobs: at most N requests, and under the API's 20 MB of inline data."""

from __future__ import annotations

from types import SimpleNamespace

from storytree_build.building.batches import MAX_JOB_BYTES, job_chunks

MB = 1024 * 1024


def wave(n: int, refs_each: int) -> list[tuple]:
    return [(SimpleNamespace(task=f"image:s_{i}", references=[SimpleNamespace(path=f"r{i}_{j}.png")
                                                              for j in range(refs_each)]), {}, f"sig{i}")
            for i in range(n)]


def jobs(entries: list[tuple], max_requests: int, ref_bytes: int) -> list[int]:
    return [len(chunk) for chunk in job_chunks(entries, max_requests, lambda path: ref_bytes)]  # type: ignore[arg-type]


def test_jobs_hold_at_most_n_requests() -> None:
    assert jobs(wave(12, 0), 5, 0) == [5, 5, 2]


def test_jobs_stay_under_the_inline_size_limit() -> None:
    # 5 references of 1 MB each travel as ~6.7 MB of base64 per request: two requests per job, not 50.
    sizes = jobs(wave(7, 5), 50, MB)
    assert sizes == [2, 2, 2, 1]
    per_request = 5 * MB * 4 // 3
    assert all(n * per_request <= MAX_JOB_BYTES for n in sizes)


def test_a_request_larger_than_the_limit_still_goes_alone() -> None:
    assert jobs(wave(2, 5), 50, 10 * MB) == [1, 1]
