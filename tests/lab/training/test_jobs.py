"""Training jobs: one trains in the background and reports its progress, a bad dataset is its error, the first
job's imports are warmed up; each job's size and each owner's share are bounded, and the queue is fair."""

from __future__ import annotations

from lab.runs.store import RunStore
from lab.settings.config import RunConfig
from lab.training.jobs import TrainingJob
from tests.conftest import ROOT


def test_training_job_runs_in_the_background_and_reports_progress(tmp_path):
    configs = [RunConfig(epochs=2, experiment="bg"), RunConfig(epochs=2, experiment="bg", seed=1)]
    job = TrainingJob(configs, RunStore(tmp_path))
    assert job.start() is job
    job.join(timeout=120)
    assert not job.running and job.error is None
    snapshot = job.snapshot()
    assert [r.state for r in job.records] == ["finished", "finished"]
    assert sorted(snapshot.latest) == [0, 1] and all(p.status == "finished" for p in snapshot.latest.values())
    assert [len(h) for h in snapshot.history.values()] == [2, 2]
    preview = snapshot.previews[1]
    assert preview.epoch == 2 and preview.snapshot.shape == (len(preview.snapshot_labels), 2)


def test_training_job_reports_a_bad_dataset_instead_of_crashing(tmp_path):
    job = TrainingJob([RunConfig(dataset="mnist", data_root=str(tmp_path))], RunStore(tmp_path / "runs"))
    job.start().join(timeout=30)
    assert job.error and "mnist" in job.error and "were not found" in job.error


def test_a_new_job_manager_warms_up_the_imports_of_the_first_training(tmp_path):
    """In a fresh process (this one has imported everything already): torch._dynamo, which the first
    optimizer would import mid-Start, is absent before and present once the manager has warmed up."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from lab.training.jobs import JobManager\n"
        "from lab.runs.store import RunStore\n"
        "before = 'torch._dynamo' in sys.modules\n"
        f"manager = JobManager(RunStore({str(tmp_path)!r}), max_running=1)\n"
        "assert manager.warmed.wait(timeout=120)\n"
        "print(before, 'torch._dynamo' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=180)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"]
