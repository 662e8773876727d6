"""Sweeps: grid expansion, validation, resuming after a kill, failed runs, the dask executor."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from _sweep_notebook import write_notebook

from workbench.cli import main
from workbench.experiments import load_sweep, run_id, run_sweep
from workbench.runs import is_complete


def _sweep_file(tmp_path: Path, grid: dict, fixed: dict | None = None, name: str = "demo") -> Path:
    write_notebook(tmp_path / "run.ipynb")
    path = tmp_path / "sweep.yaml"
    document = {"name": name, "notebook": "run.ipynb", "grid": grid, "fixed": fixed or {}}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _wait_until_gone(pid: int, timeout: float = 30.0) -> None:
    """Wait until process ``pid`` has exited (or is a zombie)."""
    deadline = time.monotonic() + timeout
    status = Path(f"/proc/{pid}/status")
    while time.monotonic() < deadline:
        try:
            state = status.read_text().split("State:", 1)[1].split()[0]
        except FileNotFoundError:
            return
        if state == "Z":
            return
        time.sleep(0.1)
    raise AssertionError(f"process {pid} (the killed sweep's kernel) still runs after {timeout} s")


def _executions(log: Path) -> list[str]:
    return sorted(log.read_text().split()) if log.exists() else []


def test_grid_expands_to_readable_deterministic_run_ids(tmp_path):
    path = _sweep_file(
        tmp_path, {"loss": ["blob", "cc"], "alpha": [1], "beta": [1, 2], "seed": [0], "fold": [0]}, {"epochs": 2}
    )
    spec = load_sweep(path)
    runs = spec.runs()
    assert [run.run_id for run in runs] == [
        "blob-a1-b1-s0-f0", "blob-a1-b2-s0-f0", "cc-a1-b1-s0-f0", "cc-a1-b2-s0-f0",
    ]
    assert runs[1].parameters == {"epochs": 2, "loss": "blob", "alpha": 1, "beta": 2, "seed": 0, "fold": 0}
    assert spec.sweep_dir == tmp_path / "runs" / "demo"
    assert [run.run_id for run in load_sweep(path).runs()] == [run.run_id for run in runs]
    assert run_id({"loss": "iwl_cc", "lr": 0.01}) == "iwl_cc-lr0.01"


@pytest.mark.parametrize(
    ("document", "match"),
    [
        ({"notebook": "run.ipynb", "grid": {"seed": [0]}}, "required field `name`"),
        ({"name": "x", "notebook": "run.ipynb", "grid": {"seed": []}}, r"`grid.seed` to be a non-empty list"),
        ({"name": "x", "notebook": "run.ipynb", "grid": {"seed": 0}}, r"`grid.seed` to be a non-empty list"),
        ({"name": "x", "notebook": "run.ipynb", "grid": {}}, r"`grid` to be a non-empty mapping"),
        ({"name": "x", "notebook": "run.ipynb", "grid": {"seed": [0]}, "fixed": {"seed": 1}}, r"both `grid` and `fixed`"),
        ({"name": "x", "notebook": "run.ipynb", "grid": {"out_dir": ["a"]}}, r"set by the sweep runner"),
        ({"name": "x", "notebook": "run.ipynb", "grid": {"seed": [0]}, "epochs": 3}, r"Unknown sweep field\(s\) \['epochs'\]"),
        ({"name": "a/b", "notebook": "run.ipynb", "grid": {"seed": [0]}}, r"`name` to be a folder name"),
        ({"name": "x", "notebook": "run.ipynb", "grid": {"seed": [0, "0"]}}, r"distinct run ids.*s0"),
        ({"name": "x", "notebook": "run.ipynb", "grid": {"seed": [0]}, "exclude": {"seed": 0}}, r"`exclude` to be a list"),
        ({"name": "x", "notebook": "run.ipynb", "grid": {"seed": [0]}, "exclude": [{"seed": 5}]}, r"'seed' = 5 is not a value"),
        ({"name": "x", "notebook": "run.ipynb", "grid": {"seed": [0]}, "exclude": [{"lr": 1}]}, r"'lr' = 1 .*not a grid key"),
    ],
)
def test_invalid_sweep_files_name_the_field(tmp_path, document, match):
    write_notebook(tmp_path / "run.ipynb")
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(ValueError, match=match):
        load_sweep(path)


def test_exclude_drops_the_grid_points_matching_an_entry(tmp_path):
    path = _sweep_file(tmp_path, {"loss": ["dc_ce", "blob"], "beta": [1, 2], "seed": [0, 1]})
    document = yaml.safe_load(path.read_text())
    document["exclude"] = [{"loss": "dc_ce", "beta": 2}, {"loss": "blob", "beta": 1, "seed": 1}]
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    ids = [run.run_id for run in load_sweep(path).runs()]
    assert ids == ["dc_ce-b1-s0", "dc_ce-b1-s1", "blob-b1-s0", "blob-b2-s0", "blob-b2-s1"]


def test_runs_side_by_side_share_the_cores_unless_the_user_chose(monkeypatch):
    from workbench.experiments.sweep import threads_per_run

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("NUMBA_NUM_THREADS", "3")
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    with threads_per_run(2):
        assert os.environ["OMP_NUM_THREADS"] == "4" and os.environ["NUMBA_NUM_THREADS"] == "3"
    assert "OMP_NUM_THREADS" not in os.environ and os.environ["NUMBA_NUM_THREADS"] == "3"
    with threads_per_run(16):
        assert os.environ["OMP_NUM_THREADS"] == "1"


def test_epoch_lines_of_running_runs_are_relayed_once_with_the_run_id(tmp_path):
    from workbench.experiments.sweep import _EpochLines

    written = []
    tail = _EpochLines(tmp_path, ["a", "b"], written.append)
    tail.poll()  # nothing started yet
    (tmp_path / "a" / "train").mkdir(parents=True)
    (tmp_path / "a" / "train" / "progress.log").write_text("epoch 1/2  loss 0.5\n")
    tail.poll()
    with (tmp_path / "a" / "train" / "progress.log").open("a") as log:
        log.write("epoch 2/2  loss 0.4\n")
    tail.poll()
    tail.poll()
    assert written == ["a: epoch 1/2  loss 0.5", "a: epoch 2/2  loss 0.4"]


def test_missing_notebook_is_reported(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"name": "x", "notebook": "nope.ipynb", "grid": {"seed": [0]}}))
    with pytest.raises(FileNotFoundError, match="`notebook`: .*nope.ipynb does not exist"):
        load_sweep(path)


def test_killed_sweep_restarted_finishes_every_run_exactly_once(tmp_path):
    log, hang = tmp_path / "executions.log", tmp_path / "hang"
    hang.mkdir()
    (hang / "s1").touch()  # run s1 hangs until this file goes; s0 and s2 finish at once
    path = _sweep_file(tmp_path, {"seed": [0, 1, 2]}, {"log": str(log), "hang_dir": str(hang)})
    spec = load_sweep(path)
    command = [sys.executable, "-m", "workbench", "sweep", str(path), "--workers", "1", "--no-progress"]
    process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    try:
        while _executions(log) != ["s0", "s1"] or not is_complete(spec.sweep_dir / "s0"):
            assert process.poll() is None, process.stdout.read().decode()
            assert time.monotonic() < deadline, "the sweep did not reach run s1"
            time.sleep(0.1)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the sweep and its pool worker
        process.wait()
    # jupyter_client starts kernels in a session of their own, so the kill misses the kernel; it exits
    # within ~1 s of noticing its parent gone (ipykernel's parent poller). Until then it could finish s1.
    _wait_until_gone(int((hang / "s1.pid").read_text()))
    assert is_complete(spec.sweep_dir / "s0")
    assert not is_complete(spec.sweep_dir / "s1") and not (spec.sweep_dir / "s2").exists()
    (hang / "s1").unlink()
    with pytest.warns(UserWarning, match=rf"Took over the lock of sweep folder .* from pid {process.pid} .* no longer runs"):
        result = run_sweep(load_sweep(path), workers=1, progress=False)
    assert result.status == {"s0": "complete", "s1": "complete", "s2": "complete"}
    assert result.skipped == ["s0"]
    # s0 ran once; s1 ran twice (killed, then redone); s2 once
    assert _executions(log) == ["s0", "s1", "s1", "s2"]
    again = run_sweep(load_sweep(path), workers=1, progress=False)
    assert again.skipped == ["s0", "s1", "s2"] and _executions(log) == ["s0", "s1", "s1", "s2"]
    sweep_info = json.loads((spec.sweep_dir / "sweep.json").read_text())
    assert sweep_info["counts"] == {"complete": 3} and sweep_info["grid"] == {"seed": [0, 1, 2]}
    assert "papermill" in sweep_info["versions"] and sweep_info["sweep_file"] == path.read_text()
    assert (spec.sweep_dir / "s1" / "notebook.ipynb").is_file()


def test_a_failing_run_is_recorded_and_the_others_finish(tmp_path, capsys):
    path = _sweep_file(tmp_path, {"loss": ["blob", "cc"], "fail": [False, True]})
    assert main(["sweep", str(path), "--workers", "2", "--no-progress"]) == 1
    out = capsys.readouterr().out
    sweep_dir = tmp_path / "runs" / "demo"
    assert "2 of 4 runs complete" in out and "failed: blob-failTrue" in out
    for loss in ("blob", "cc"):
        assert is_complete(sweep_dir / f"{loss}-failFalse")
        record = json.loads((sweep_dir / f"{loss}-failTrue" / "run.json").read_text())
        assert record["status"] == "failed"
        assert record["error"] == f"RuntimeError: run {loss}-failTrue made to fail"
        assert "RuntimeError" in record["traceback"] and "\x1b[" not in record["traceback"]
        assert record["parameters"] == {"loss": loss, "fail": True}
        assert record["timings"]["total_s"] > 0
        assert (sweep_dir / f"{loss}-failTrue" / "notebook.ipynb").is_file()  # the executed record is kept


def test_dask_executor_runs_a_two_run_sweep_on_a_local_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    log = tmp_path / "executions.log"
    spec = load_sweep(_sweep_file(tmp_path, {"seed": [0, 1]}, {"log": str(log)}))
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None)
    with cluster, distributed.Client(cluster) as client:
        result = run_sweep(spec, dask=client, progress=False)
    assert result.status == {"s0": "complete", "s1": "complete"} and result.skipped == []
    assert _executions(log) == ["s0", "s1"]
    assert json.loads((spec.sweep_dir / "sweep.json").read_text())["executor"] == "dask (Client)"


def test_dask_local_cluster_from_the_command_line(tmp_path):
    spec = load_sweep(_sweep_file(tmp_path, {"loss": ["blob", "cc"]}))
    command = ["workbench", "sweep", str(tmp_path / "sweep.yaml"), "--dask", "local", "--workers", "2", "--no-progress"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "2 of 2 runs complete" in done.stdout
    assert is_complete(spec.sweep_dir / "blob") and is_complete(spec.sweep_dir / "cc")
    assert json.loads((spec.sweep_dir / "sweep.json").read_text())["executor"] == "dask (local)"


def test_a_runs_kernel_is_shut_down_without_an_interrupt():
    """jupyter_client sends SIGINT before every shutdown request; an idle ipykernel then logs
    "KeyboardInterrupt caught in kernel." on the sweep's console. Interrupts asked for still go."""
    import asyncio
    import signal
    from concurrent.futures import ThreadPoolExecutor

    from workbench._kernels import EncryptedKernelManager

    sent = []

    async def interrupt_then_shut_down() -> None:
        manager = EncryptedKernelManager(kernel_name="python3")
        await manager.start_kernel()
        send = manager._async_signal_kernel

        async def recorded(signum: int) -> None:
            sent.append(signum)
            await send(signum)

        manager._async_signal_kernel = recorded
        await manager.interrupt_kernel()
        await manager.shutdown_kernel()
        assert not manager.has_kernel

    with ThreadPoolExecutor(1) as thread:  # a loop of its own: an earlier test may leave one running in this thread
        thread.submit(asyncio.run, interrupt_then_shut_down()).result()
    assert sent == [signal.SIGINT]  # the interrupt asked for, none from the shutdown


def test_a_runs_kernel_talks_over_encrypted_sockets_and_prints_no_transport_warning(tmp_path):
    """The console of a sweep shows no ipykernel 'over TCP without encryption' line: the transport is encrypted."""
    from workbench._kernels import ENCRYPTION, EncryptedKernelManager

    import asyncio

    assert ENCRYPTION == "auto"  # pyzmq's wheels carry CurveZMQ; ipykernel's kernelspec declares it

    async def started_kernel_keys() -> tuple:
        manager = EncryptedKernelManager(kernel_name="python3")
        await manager.start_kernel()
        try:
            return manager.curve_publickey, manager.get_connection_info().get("curve_publickey")
        finally:
            await manager.shutdown_kernel(now=True)

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as thread:  # a loop of its own: an earlier test may leave one running in this thread
        public_key, in_connection_file = thread.submit(asyncio.run, started_kernel_keys()).result()
    assert public_key and in_connection_file  # CurveZMQ keys were provisioned for the kernel
    path = _sweep_file(tmp_path, {"loss": ["blob"]})
    result = subprocess.run([sys.executable, "-m", "workbench", "sweep", str(path), "--no-progress"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "without encryption" not in result.stderr + result.stdout
    assert "1 of 1 runs complete" in result.stdout
