"""The run store: one directory per run under a runs folder, written atomically, read back safely.

Layout of ``RUNS/<run_id>/`` (file names and tensors are declared in :mod:`lab.runs.contents`)::

    config.json            the RunConfig
    status.json            status, message, summary numbers, owner, start time, pid and host of the writer
    metrics.jsonl          one JSON object per finished epoch
    weights.safetensors    model.* and head.* tensors (parameters and buffers)
    features.safetensors   final test features, labels, logits and class directions; the fixed snapshot
                           subset's indices, penultimate activations and raw images (RunFeatures)
    snapshots.safetensors  the subset's features, class directions and test accuracy after every epoch
                           from epoch 0 (RunSnapshots)

Every file is written to a temporary name and renamed into place, so a reader sees either the old
or the new version, never half of one. A write that fails (a full disk) is retried once; a run whose
failure could not even be written down is reported ``failed`` by this process instead of ``running``.

Run files are untrusted input: a run folder may come from an unzipped export or from anyone who can write
the runs folder. A reader opens only plain files, never through a symbolic link (a link to /dev/zero or a
FIFO is an error, not a hang), up to a size cap per file (:data:`lab.contents.MAX_BYTES`); JSON numbers and
nesting are bounded, every field is type-checked, and weights and features load only through safetensors.
Whatever is wrong with one run becomes that run's ``error``; the other runs still list.

Ownership: ``owner`` is the app session that started a run; "" marks a shared run (the command line, the
shipped examples). A run whose status.json is missing or unreadable has an unknown owner (None): it passes
no ownership check and is never shared, so a broken file cannot make a private run public.

A ``running`` run whose writer process on this machine is gone is reported ``interrupted``, and the
temporary files its writer left behind are deleted. A ``running`` run written from another machine (a
shared runs folder) is reported ``elsewhere``: this machine cannot tell whether it still trains.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import socket
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from lab.runs import contents, safetensors_header, tensor_files
from lab.runs.contents import RunStoreError
from lab.runs.tensor_files import RunFeatures, RunSnapshots
from lab.runs.io import STALE_TEMPORARY_SECONDS, RunWriteError, describe_os_error, failed_writes, failed_writes_lock, open_run_file, parsed_files, pid_alive, pread_exactly, problem_text, read_run_file, read_tensor, remove_partial_writes, remove_tree, run_key, shortened, write_atomic, write_failure
from lab.runs.record import ACTIVE_STATES, ELSEWHERE, RunRecord, config_of, newest_first, start_time, status_of
from lab.runs.writer import RunWriter
from lab.shown_text import count_text
from lab.settings.config import RunConfig

logger = logging.getLogger(__name__)

RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")  # used with fullmatch: "x\n" is no id
TRASH_PREFIX = ".trash-"  # a deleted experiment's runs, moved together before they are removed


class RunStore:
    """All runs under one folder (default ``runs/``)."""

    def __init__(self, root: str | Path = "runs") -> None:
        self.root = Path(root)
        with _started_lock:
            first_use = run_key(self.root) not in _started
            _started.add(run_key(self.root))
        if first_use:  # the first store of a runs folder in a process: empty what killed deletes left
            self.empty_trash()

    def create(self, config: RunConfig, owner: str = "") -> RunWriter:
        """A new run directory with a unique, readable id: ``<time>-<loss>-<n>``. ``owner`` is the app
        session that asked for it ("" for the CLI and shipped examples, which everyone sees). A folder
        that cannot be written is a :class:`RunWriteError`, and no half-made run folder is left."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            for n in range(1000):
                run_dir = self.root / f"{stamp}-{config.loss.replace(':', '-')}-{n}"  # pml:X: no ':' in ids
                try:
                    run_dir.mkdir()
                except FileExistsError:
                    continue
                break
            else:
                raise RunWriteError(f"{self.root}: could not create a new run folder")
        except OSError as err:
            raise RunWriteError(f"cannot create a run: {describe_os_error(err, self.root)}") from err
        try:
            return RunWriter(run_dir, config, owner)
        except RunWriteError as err:
            shutil.rmtree(run_dir, ignore_errors=True)
            raise RunWriteError(f"cannot create a run: {err}") from err

    def write_problem(self) -> str | None:
        """Why new runs cannot be written here now (a file in the way, a read-only folder, a full disk), or
        None; creates the runs folder when it is missing. For a message before anything trains."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.root):
                pass
        except OSError as err:
            return describe_os_error(err, self.root)
        return None

    def run_dir(self, run_id: str) -> Path:
        """The folder of ``run_id``; ids are plain names, so no id can point outside the runs folder."""
        if not isinstance(run_id, str) or not RUN_ID_PATTERN.fullmatch(run_id) or ".." in run_id:
            raise RunStoreError(f"run id {run_id!r} is not a valid run name")
        return self.root / run_id

    def _entries(self) -> list[os.DirEntry[str]]:
        """The runs folder's entries; none when it does not exist yet."""
        try:
            with os.scandir(self.root) as entries:
                return list(entries)
        except FileNotFoundError:
            return []
        except OSError as err:
            raise RunStoreError(f"cannot list the runs folder: {describe_os_error(err, self.root)}") from None

    def run_ids(self) -> list[str]:
        """Names of the folders that hold a run (a config.json), sorted."""
        ids = []
        for entry in self._entries():
            if RUN_ID_PATTERN.fullmatch(entry.name) and ".." not in entry.name and self._is_run(Path(entry.path)):
                ids.append(entry.name)
        return sorted(ids)

    @staticmethod
    def _is_run(run_dir: Path) -> bool:
        try:
            return stat.S_ISDIR(os.stat(run_dir).st_mode) and os.path.lexists(run_dir / contents.CONFIG)
        except OSError:
            return False

    def load(self, run_id: str) -> RunRecord:
        """Read a run's config, status and metrics. Every problem, whatever it is, is reported in
        ``record.error``; only an id that is not a run raises. A run whose writer has ended loses the
        temporary files it left behind."""
        run_dir = self.run_dir(run_id)
        if not self._is_run(run_dir):
            raise RunStoreError(f"run {run_id!r} not found in {self.root}")
        try:
            return self._load(run_id, run_dir)
        except Exception as err:  # the files are untrusted: whatever they do, only this run is affected
            logger.warning("run %s cannot be read: %s", run_id, err, exc_info=True)
            problem = shortened(f"the run cannot be read ({type(err).__name__}: {err})")
            return RunRecord(run_id, run_dir, None, {"status": "failed"}, [], problem)

    def _load(self, run_id: str, run_dir: Path) -> RunRecord:
        if run_dir.is_symlink():
            problem = "the run folder is a symbolic link; LossLens reads run folders only inside the runs folder"
            return RunRecord(run_id, run_dir, None, {"status": "failed"}, [], problem)
        problems = []
        config, fallback = None, ""
        try:
            config, problem, fallback = parsed_files.get(run_dir, contents.CONFIG, config_of)
            if problem:
                problems.append(problem)
        except Exception as err:  # RunStoreError: a link, a pipe, a file over its cap, not JSON
            problems.append(problem_text(contents.CONFIG, err))
        status: dict[str, Any] = {"status": "failed"}  # no owner: unknown
        try:
            checked, status_problems = parsed_files.get(run_dir, contents.STATUS, status_of)
            status = dict(checked)
            problems += status_problems
        except Exception as err:
            problems.append(problem_text(contents.STATUS, err))
        status = self._current(run_dir, status)
        error = "; ".join(problems) if problems else None
        logger.debug("loaded run %s (%s) from %s", run_id, status["status"], run_dir)
        return RunRecord(run_id, run_dir, config, status, None, error, fallback)

    @staticmethod
    def _current(run_dir: Path, status: dict[str, Any]) -> dict[str, Any]:
        """The status as it stands now: a ``running`` run whose writer failed, ended or is on another machine
        says so. Temporary files of a writer that is not alive here are cleaned up."""
        here = status.get("host") == socket.gethostname()
        pid = status.get("pid")
        alive = here and isinstance(pid, int) and pid_alive(pid)
        if status["status"] == "running":
            failure = write_failure(run_dir) if alive and pid == os.getpid() else None
            if failure is not None:
                status = {**status, "status": "failed", "message": failure}
            elif not alive and here:
                status = {**status, "status": "interrupted"}
                status["message"] = "the process training this run ended before it finished"
            elif not alive:
                status = {**status, "status": ELSEWHERE}
                status["message"] = (
                    "running elsewhere or interrupted: another machine was training it, and this one cannot "
                    "tell whether it still is"
                )
        if not alive:
            # a dead writer of this host left its temporary files for good; any other may still be renaming
            # one (another host's writer, or the app caching an analysis into a finished run)
            writer_ended_here = here and status["status"] == "interrupted"
            remove_partial_writes(run_dir, older_than=0.0 if writer_ended_here else STALE_TEMPORARY_SECONDS)
        return status

    def list(self) -> list[RunRecord]:
        """Every run, oldest first; runs with bad files are included with ``error`` set."""
        records = []
        for run_id in self.run_ids():
            try:
                records.append(self.load(run_id))
            except RunStoreError:
                continue  # removed since it was listed
        return records

    def experiments(self, owner: str | None = None) -> dict[str, list[RunRecord]]:
        """Runs grouped by experiment id, the most recently started experiment first, each group in the
        order its runs started training (runs without a readable start time last, by id; experiments
        with none at all last). With ``owner``, only the runs of that app session and the shared ones
        (owner ""); runs of unknown owner only without ``owner``."""
        groups: dict[str, list[RunRecord]] = {}
        for record in self.list():
            if owner is None or record.owner in ("", owner):
                groups.setdefault(record.experiment or record.run_id, []).append(record)
        for records in groups.values():
            records.sort(key=start_time)
        return dict(sorted(groups.items(), key=newest_first))

    def limits(self, run_id: str) -> tensor_files.RunLimits:
        """What run ``run_id``'s config says its files hold (:class:`lab.tensor_files.RunLimits`); a
        :class:`RunStoreError` when the config cannot be read, since then nothing can be checked."""
        run_dir = self.run_dir(run_id)
        try:
            config, problem, _ = parsed_files.get(run_dir, contents.CONFIG, config_of)
        except RunStoreError as err:
            problem = str(err)
        if config is None:
            raise RunStoreError(f"run {run_id}: {problem}, so its other files cannot be checked against it")
        try:
            return tensor_files.RunLimits.of(config)
        except Exception as err:  # a model or loss that cannot be built with these settings
            raise RunStoreError(f"run {run_id}: its config cannot be built ({type(err).__name__}: {err})") from None

    def _load_tensors(
        self,
        run_id: str,
        filename: str,
        check: Callable[[dict[str, safetensors_header.TensorInfo]], None],
        names: Any = None,
        read: bool = True,
        missing_ok: bool = False,
    ) -> dict[str, torch.Tensor]:
        """The tensors of a run's safetensors file (those in ``names``, default all), read one at a time after
        ``check`` has accepted the header's types and shapes: a file is never read whole, and a tensor is
        allocated only once its size is known to fit. With ``read`` False only the header is checked; with
        ``missing_ok`` a missing file gives no tensors."""
        run_dir = self.run_dir(run_id)
        try:
            with open_run_file(run_dir, filename) as opened:
                if opened is None:
                    if missing_ok:
                        return {}
                    raise RunStoreError(f"{filename} is missing (the run did not finish writing it)")
                fd, info = opened
                try:
                    length = safetensors_header.header_length(pread_exactly(fd, 8, 0), info.st_size)
                    header = safetensors_header.parse_header(pread_exactly(fd, length, 8), info.st_size)
                except (ValueError, OSError) as err:
                    raise RunStoreError(f"{filename} is not a valid safetensors file ({shortened(str(err))})") from None
                wanted = header.tensors if names is None else {k: v for k, v in header.tensors.items() if k in names}
                check(wanted)
                try:
                    tensors = {name: read_tensor(fd, header, name) for name in wanted if read}
                except OSError as err:
                    raise RunStoreError(f"{filename} cannot be read ({err.strerror or err})") from None
        except RunStoreError as err:
            message = str(err)
            raise RunStoreError(message if message.startswith("run ") else f"run {run_id}: {message}") from None
        logger.info("loaded %d tensors from %s", len(tensors), run_dir / filename)
        return tensors

    def load_weights(self, run_id: str) -> dict[str, torch.Tensor]:
        """The weights file's tensors (``model.*`` and ``head.*``; :func:`lab.tensor_files.split_weights`), exactly
        the state of the model and head the run's config builds, every floating-point value finite."""
        limits = self.limits(run_id)
        tensors = self._load_tensors(
            run_id, contents.WEIGHTS, lambda infos: tensor_files.check_weights(infos, run_id, limits)
        )
        tensor_files.check_weight_values(tensors, run_id)
        return tensors

    def load_features(self, run_id: str) -> RunFeatures:
        """The features file, checked against itself and against the run's config."""
        limits = self.limits(run_id)
        check = functools.partial(RunFeatures.check_layout, run_id=run_id, limits=limits)
        tensors = self._load_tensors(run_id, contents.FEATURES, check, RunFeatures.names())
        return RunFeatures.from_tensors(tensors, run_id, limits)

    def load_snapshots(self, run_id: str) -> RunSnapshots:
        """The snapshots file, checked against itself and against the run's config."""
        limits = self.limits(run_id)
        check = functools.partial(RunSnapshots.check_layout, run_id=run_id, limits=limits)
        tensors = self._load_tensors(run_id, contents.SNAPSHOTS, check, RunSnapshots.names())
        return RunSnapshots.from_tensors(tensors, run_id, limits)

    def check_files(self, run_id: str) -> None:
        """Check the headers of the run's safetensors files against its config, reading no tensor (what an
        export does before it copies the files); a :class:`RunStoreError` names what does not fit."""
        limits = self.limits(run_id)
        checks = {
            contents.WEIGHTS: lambda infos: tensor_files.check_weights(infos, run_id, limits),
            contents.FEATURES: functools.partial(RunFeatures.check_layout, run_id=run_id, limits=limits),
            contents.SNAPSHOTS: functools.partial(RunSnapshots.check_layout, run_id=run_id, limits=limits),
        }
        for filename, check in checks.items():
            self._load_tensors(run_id, filename, check, read=False, missing_ok=True)

    def read_files(self, run_id: str) -> dict[str, bytes]:
        """The bytes of every run file the run has written (of :data:`lab.contents.FILES`, in that order),
        each read as :func:`read_run_file` reads it."""
        run_dir = self.run_dir(run_id)
        files = {}
        for name in contents.FILES:
            try:
                data = read_run_file(run_dir, name)
            except RunStoreError as err:
                raise RunStoreError(f"run {run_id}: {err}") from None
            if data is not None:
                files[name] = data
        return files

    def import_files(self, run_id: str, files: dict[str, bytes]) -> RunRecord:
        """Write into run ``run_id``'s folder the files of the same run trained elsewhere (a Ray worker's
        :meth:`read_files`), each atomically and the status last, so no reader sees the run ended before
        its files are in place."""
        unknown = sorted(set(files) - set(contents.FILES))
        if unknown:
            raise RunStoreError(f"run {run_id}: {', '.join(unknown)} is not a run file")
        run_dir = self.run_dir(run_id)
        try:
            for name in sorted(files, key=lambda name: name == contents.STATUS):
                write_atomic(run_dir / name, files[name])
        except OSError as err:
            raise RunWriteError(f"run {run_id}: {describe_os_error(err, run_dir)}") from err
        return self.load(run_id)

    def modified(self, run_id: str, filename: str) -> float:
        """When the run's file ``filename`` (one of :data:`lab.contents.FILES`) was last written."""
        if filename not in contents.FILES:
            raise RunStoreError(f"{filename!r} is not a run file")
        try:
            return (self.run_dir(run_id) / filename).lstat().st_mtime
        except OSError as err:
            raise RunStoreError(f"run {run_id}: {filename} cannot be read ({err.strerror})") from None

    def size_bytes(self) -> int:
        """Disk space taken by the runs folder (links count as themselves, never what they point to)."""
        total = 0
        for folder, _, names in os.walk(self.root):
            for name in names:
                try:
                    total += os.lstat(os.path.join(folder, name)).st_size
                except OSError:
                    continue
        return total

    def delete_experiment(self, experiment: str, owner: str) -> int:
        """Delete the runs of ``experiment`` that ``owner`` started, all of them or none; returns how many.

        Runs of other owners, shared runs and runs of unknown owner are kept. A run still training (or
        possibly training on another machine) refuses the whole delete with a :class:`RunStoreError`. Each
        run folder is first renamed into one trash folder inside the runs folder (a rename moves a link,
        never what it points to); if any rename fails, the others are renamed back and nothing is deleted.
        """
        records = [r for r in self.experiments(owner=owner).get(experiment, []) if r.owner == owner]
        busy = [r.run_id for r in records if r.state in ACTIVE_STATES]
        if busy:
            raise RunStoreError(f"run {busy[0]} is still training: stop it before deleting the experiment")
        self.empty_trash()
        if not records:
            return 0
        for record in records:
            locked = _unremovable(record.run_dir)
            if locked is not None:
                raise RunStoreError(
                    f"no permission to remove the files in {locked}; nothing was deleted (the runs folder's owner "
                    "can delete it, or change its permissions)"
                )
        try:
            trash = Path(tempfile.mkdtemp(prefix=TRASH_PREFIX, dir=self.root))
        except OSError as err:
            raise RunStoreError(f"cannot delete: {describe_os_error(err, self.root)}") from None
        moved: list[tuple[Path, Path]] = []
        for record in records:
            try:
                os.rename(record.run_dir, trash / record.run_id)
            except OSError as err:
                for original, moved_to in reversed(moved):
                    try:
                        os.rename(moved_to, original)
                    except OSError as back:
                        logger.error("could not move %s back to %s: %s", moved_to, original, back)
                remove_tree(trash)
                raise RunStoreError(
                    f"could not delete run {record.run_id} ({err.strerror}); nothing was deleted"
                ) from None
            moved.append((record.run_dir, trash / record.run_id))
        with failed_writes_lock:
            for original, _ in moved:
                failed_writes.pop(run_key(original), None)
        left = remove_tree(trash)
        if left:
            raise RunStoreError(
                f"{experiment} ({count_text(len(moved), 'run')}) is gone from the list, but its files could not all be "
                f"removed ({left[0]}): they stay in {trash} until LossLens next starts, or until you remove them"
            )
        logger.info("deleted experiment %s: %d runs", experiment, len(moved))
        return len(moved)

    def empty_trash(self, older_than: float = STALE_TEMPORARY_SECONDS) -> list[str]:
        """Remove the trash folders that deletes left behind (killed midway, or unable to remove a file), those
        untouched for ``older_than`` seconds: a younger one may be a delete under way in another process.
        Returns what could not be removed, each ``path: reason``, and logs it."""
        left = []
        for entry in self._entries_quietly():
            if entry.name.startswith(TRASH_PREFIX) and entry.is_dir(follow_symlinks=False):
                try:
                    if time.time() - entry.stat(follow_symlinks=False).st_mtime <= older_than:
                        continue
                except OSError:
                    continue
                left += remove_tree(Path(entry.path))
        if left:
            logger.warning("the trash in %s could not be emptied: %d entries stay (%s)", self.root, len(left), left[0])
        return left

    def _entries_quietly(self) -> list[os.DirEntry[str]]:
        """The runs folder's entries, none when it cannot be listed (what lists runs says why)."""
        try:
            return self._entries()
        except RunStoreError as err:
            logger.debug("%s", err)
            return []


_started: set[str] = set()  # runs folders this process has opened a store on (their trash is emptied once)
_started_lock = threading.Lock()


def _unremovable(run_dir: Path) -> Path | None:
    """A folder inside ``run_dir`` (or itself) whose entries this process may not remove, or None."""
    for folder, _, _ in os.walk(run_dir):  # never follows links
        if not os.access(folder, os.W_OK | os.X_OK):
            return Path(folder)
    return None
