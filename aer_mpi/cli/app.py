"""``aer-mpi``: the command line for batch jobs (``mpiexec -n P aer-mpi run ...``, ``srun``).

Every rank runs this program. Rank 0 reads and parses the input files and
checks the outputs; it broadcasts either the circuits or the one-line error,
so every rank leaves with the same exit status and none waits for a rank
that has given up. The circuits then run through ``AerMPISimulator`` and its
``AerJob``, exactly as a Python script under ``mpiexec`` would; rank 0 writes
the results (JSON, atomically) and, with ``--save-statevector``, every rank
writes its part of each final state into one ``.npy`` file per circuit.

Exit status: 0 success; 2 bad usage or input (a missing or malformed file, an
output that cannot be written); 1 the run failed (not enough memory, an
error on a rank, or some circuit of the batch failed: the others are written);
130 interrupted (SIGINT), 143 terminated (SIGTERM), 138 (SIGUSR1), 129 (SIGHUP): the finished
circuits are written, the others marked cancelled; with ``--checkpoint DIR``
a checkpoint is written first, and the same command resumes from it. Errors are one line on stderr, from rank 0.
This module knows the backend and the engine's settings, not the kernels.
"""

from __future__ import annotations

import argparse
from concurrent import futures
import os
import pickle
import random
import sys
from typing import Any, Optional, Sequence

from aer_mpi.comm.watchdog import FILE_WORK_TIMES, bounded
from aer_mpi._version import __version__
from aer_mpi.cli.errors import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_RUN_FAILED,
    PROG,
    CliError,
    one_line,
    rank_hint,
    report_error,
)
from aer_mpi.cli.info import command_info
from aer_mpi.cli.inputs import Source, read_sources
from aer_mpi.cli.outputs import (
    check_output,
    check_statevector_dir,
    check_statevector_targets,
    results_document,
    write_json_atomically,
)
from aer_mpi.engine.checkpoint import MANIFEST, stored_seed
from aer_mpi import _early_signals
from aer_mpi.engine.interrupts import install_signal_handlers, request_stop, stop_requested, uninstall_signal_handlers
from aer_mpi.qobj.options import OPTIONS, PRECISIONS, PROGRESS_STYLES


class _Parser(argparse.ArgumentParser):
    """Prints help and usage errors on rank 0 only; every rank exits alike."""

    def _print_message(self, message: str, file: Any = None) -> None:
        if rank_hint() == 0:
            super()._print_message(message, file)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Run Qiskit circuits on a statevector sharded across MPI ranks "
        "(start it with mpiexec -n P or srun; every rank runs the same command).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    run = sub.add_parser(
        "run",
        help="run circuits from OpenQASM files and write the results as JSON",
        description="Run OpenQASM 2 (.qasm) and OpenQASM 3 (.qasm3) files, one circuit each, "
        "and write their counts to OUTPUT (JSON, written by rank 0 atomically).",
    )
    run.add_argument("files", nargs="+", metavar="FILE", help="OpenQASM 2 (.qasm) or 3 (.qasm3) files")
    run.add_argument("--shots", type=_option_type("shots"), default=OPTIONS["shots"].default,
                     help=f"shots per circuit (default {OPTIONS['shots'].default})")
    run.add_argument(
        "--seed", type=_option_type("seed_simulator"), default=OPTIONS["seed_simulator"].default,
        help="seed of the sampler; the same seed gives the same counts whatever the number of ranks "
        "(default: a random seed, recorded in the output)",
    )
    run.add_argument("--precision", choices=PRECISIONS, default=OPTIONS["precision"].default,
                     help=f"complex128 (double) or complex64 (single: half the memory); "
                     f"default {OPTIONS['precision'].default}")
    run.add_argument("--memory", action="store_true", help="also record every shot's outcome")
    run.add_argument("--output", "-o", required=True, metavar="OUT.json", help="where to write the results")
    run.add_argument(
        "--save-statevector", metavar="DIR", default=None,
        help="write each circuit's final state (before its final measurements) to DIR/<name>.npy, "
        "in Qiskit's qubit order, from every rank in parallel (DIR must be on a file system all ranks share)",
    )
    run.add_argument("--max-memory-mb", type=_option_type("max_memory_mb"), default=OPTIONS["max_memory_mb"].default,
                     metavar="MIB",
                     help="memory each rank may use (default: what its node has free, shared by its ranks)")
    run.add_argument(
        "--parallel-experiments", action=argparse.BooleanOptionalAction,
        default=OPTIONS["parallel_experiments"].default,
        help="run circuits too small to shard whole, one per rank at a time (default: %(default)s); "
        "--no-parallel-experiments shards every circuit over all ranks",
    )
    run.add_argument(  # noise (docs/noise.md)
        "--noise-model", metavar="NOISE.json", default=None,
        help="a Qiskit Aer noise model, as json.dump(noise_model.to_dict(serializable=True), file); "
        "run by the method that suits it (density matrix, stabilizer tableau or trajectories; docs/noise.md)",
    )
    run.add_argument(  # checkpoint and restart (docs/checkpoint.md)
        "--checkpoint", metavar="DIR", default=None,
        help="keep checkpoints in DIR (on a file system all ranks share); if DIR holds one of this job, "
        "resume from it. A checkpoint is written on a stop signal (SIGTERM, SIGUSR1, SIGINT, SIGHUP; then "
        "the run stops) and every "
        "--checkpoint-every",
    )
    run.add_argument(
        "--checkpoint-every", metavar="PERIOD", default=None, type=_period_type,
        help="write a checkpoint every PERIOD (90s, 10m, 2h) as well; needs --checkpoint or --resume",
    )
    run.add_argument(
        "--resume", metavar="DIR", default=None,
        help="resume from the checkpoint in DIR (as --checkpoint DIR, but DIR must hold one); the same "
        "files and options as the run that wrote it, at any number of ranks",
    )
    noise = run.add_mutually_exclusive_group()
    noise.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr (errors still print)")
    noise.add_argument(
        "--progress", choices=PROGRESS_STYLES, default=None,
        help="progress on stderr from rank 0: a bar, or plain lines (default: a bar on a terminal, "
        "lines otherwise, e.g. in a SLURM log)",
    )
    run.set_defaults(handler=command_run)

    info = sub.add_parser("info", help="print versions, the MPI library, ranks, threads and memory per rank")
    info.add_argument("--json", action="store_true", help="print it as JSON")
    info.set_defaults(handler=command_info)
    return parser


def _period_type(text: str) -> float:
    from aer_mpi.errors import InvalidInputError
    from aer_mpi.qobj.options import parse_period

    try:
        return parse_period(text)
    except InvalidInputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _option_type(name: str):
    """An argparse type: a number that run option ``name`` accepts (``aer_mpi.qobj.options``)."""
    row = OPTIONS[name]
    allowed = row.allowed.replace("None or ", "")  # (None: the option left out, on the command line)

    def parse(text: str) -> Any:
        value: Any = None
        for kind in (int, float):
            try:
                value = kind(text)
                break
            except ValueError:
                pass
        if value is None:
            raise argparse.ArgumentTypeError(f"expecting {allowed}, got {text!r}")
        from aer_mpi.errors import InvalidInputError
        from aer_mpi.qobj.options import normalise_options

        try:  # its message names a limit and why (shots: at most 2**40, each outcome takes 8 bytes)
            normalise_options({name: value})
        except InvalidInputError as exc:
            reason = str(exc).split(": ", 1)[-1].replace("None or ", "")
            raise argparse.ArgumentTypeError(f"{reason}, got {text!r}") from None
        if not row.check(value):
            raise argparse.ArgumentTypeError(f"expecting {allowed}, got {text!r}")
        return value

    return parse


def main(argv: Optional[Sequence[str]] = None, *, exiting: bool = False) -> int:
    """Run the command line ``argv``; its exit status.

    ``exiting=True`` (the ``aer-mpi`` command, ``python -m aer_mpi``): the process ends when this
    returns, so ``run`` leaves its stop handlers in place and SIGUSR1 ignored until the exit; a stop
    signal that comes after the work (Slurm's ``--signal=USR1@T`` just as the run ends) cannot kill a
    finished run while MPI finalises. Otherwise the caller goes on, and gets its handlers back.
    """
    # python -m aer_mpi held the stop signals while importing (aer_mpi/_early_signals.py); run takes
    # them over once its own handlers are in place (released here first, a signal meanwhile killed it)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit:
        _early_signals.release()
        raise
    args.exiting = exiting
    if args.handler is not command_run:
        early = _early_signals.release()
        if early:
            import signal

            signal.raise_signal(early[0])  # no run to stop: what the signal would have done
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        if rank_hint() == 0:
            print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def command_line() -> int:
    """The ``aer-mpi`` command and ``python -m aer_mpi``: ``main`` in a process that ends when it returns."""
    return main(exiting=True)


# -- commands ---------------------------------------------------------------------------
def _prepare(args: argparse.Namespace) -> tuple[list[Source], int]:
    """On rank 0: the circuits and the seed, after checking every input and output."""
    from aer_mpi import environment
    from aer_mpi.errors import InvalidInputError
    from aer_mpi.service.filenames import unique_stems

    try:
        environment.check_environment()  # a mistyped AER_MPI_* variable, before any work
    except InvalidInputError as exc:
        raise CliError(str(exc), EXIT_BAD_INPUT) from None
    directory = checkpoint_dir(args)
    # hardening: -o may not name an input file, nor a file of the folders the run writes
    check_output(args.output, args.files, args.save_statevector, directory)
    sources = read_sources(args.files)
    if args.save_statevector is not None:  # created later, once the noise model is read too
        check_statevector_targets(args.save_statevector, unique_stems(s.circuit.name for s in sources))
    seed = args.seed
    if seed is None:  # a resumed job goes on with the seed it was started with
        seed = stored_seed(directory)
    if seed is None:
        seed = random.SystemRandom().randrange(1 << 62)
    return sources, seed


def checkpoint_dir(args: argparse.Namespace) -> Optional[str]:
    """The checkpoint directory of ``--checkpoint`` / ``--resume`` (checked), or None."""
    import os

    from aer_mpi.engine.checkpoint import MANIFEST

    if args.checkpoint is not None and args.resume is not None and args.checkpoint != args.resume:
        raise CliError("--checkpoint and --resume name different directories: give one of them", EXIT_BAD_INPUT)
    directory = args.resume if args.resume is not None else args.checkpoint
    if directory is not None and (not directory or (os.path.exists(directory) and not os.path.isdir(directory))):
        raise CliError(f"--checkpoint {directory!r}: not a directory: give one (it is created if need be)",
                       EXIT_BAD_INPUT)
    if directory is None:
        if args.checkpoint_every is not None:
            raise CliError("--checkpoint-every needs --checkpoint DIR (where to keep them)", EXIT_BAD_INPUT)
        return None
    if args.resume is not None and not os.path.isfile(os.path.join(directory, MANIFEST)):
        raise CliError(f"--resume {directory}: no checkpoint there (no {MANIFEST}): check the path, or use "
                       f"--checkpoint {directory} to start a run that keeps checkpoints there", EXIT_BAD_INPUT)
    for path in args.files + [args.output]:
        if os.path.abspath(path) == os.path.abspath(directory):
            raise CliError(f"--checkpoint {directory} is also an input or the output: choose another directory",
                           EXIT_BAD_INPUT)
    if args.save_statevector is not None and os.path.realpath(args.save_statevector) == os.path.realpath(directory):
        # the checkpoint's own state files are removed when the run ends: a circuit's saved state whose
        # name matched them went with them
        raise CliError(f"--checkpoint {directory} is also the --save-statevector directory: give each its own",
                       EXIT_BAD_INPUT)
    return directory


def _share(comm: Any, compute: Any) -> Any:
    """Run ``compute()`` on rank 0 and give every rank its value, or raise its ``CliError`` everywhere."""
    packet: Optional[bytes] = None
    if comm.Get_rank() == 0:
        try:
            outcome: tuple = ("ok", compute())
        except CliError as exc:
            outcome = ("error", str(exc), exc.status)
        except Exception as exc:  # a bug or an odd file: still one line, on every rank
            outcome = ("error", f"{type(exc).__name__}: {one_line(str(exc))}", EXIT_BAD_INPUT)
        try:
            packet = pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            packet = pickle.dumps(("error", f"cannot send the circuits to the other ranks: {exc}", EXIT_RUN_FAILED))
    # rank 0 may parse large files for minutes (it refuses pipes and devices unread): a longer bound
    with bounded(comm, "rank 0 reading the circuits", FILE_WORK_TIMES):
        outcome = pickle.loads(comm.bcast(packet, root=0))
    if outcome[0] == "error":
        raise CliError(outcome[1], outcome[2])
    return outcome[1]


def _read_noise_model(path: str) -> dict:
    """The noise model file's dict, checked (every error named with its index)."""
    from aer_mpi.errors import InvalidInputError
    from aer_mpi.qobj.noise import NoiseTable, noise_dict

    try:
        data = noise_dict(path)
        NoiseTable(data)
    except InvalidInputError as exc:
        raise CliError(f"--noise-model {path}: {exc}", EXIT_BAD_INPUT) from exc
    return data


def command_run(args: argparse.Namespace) -> int:
    import signal

    from aer_mpi.errors import AerMPIError
    from aer_mpi.provider.backend import load_mpi

    # SIGUSR1: what Slurm's --signal=B:USR1@120 forwards before a time limit; SIGHUP: the terminal or
    # ssh session closed (it killed the run, finished circuits and all)
    previous = install_signal_handlers((signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGHUP),
                                       end_now=_end_every_rank_now)
    early, held = _early_signals.hand_over()  # (python -m aer_mpi held them while starting)
    previous.update(held)  # what to put back: the handlers found before the hold
    if getattr(args, "exiting", False):
        import atexit

        # registered before the backend's own exit hooks, which run first (they use MPI)
        atexit.register(_finalize_mpi_while_the_handlers_stand)
    # MPI bounded: a rank frozen at the start must not leave the others in MPI_Init forever, and a
    # SIGTERM, SIGHUP or Ctrl-C meanwhile ends it (no Python handler runs inside MPI_Init); a SIGUSR1
    # is noted, and acted on once the run starts
    if early:  # a stop signal that came while python -m aer_mpi was starting
        request_stop(early[0])
    try:
        load_mpi(stop_signals=(signal.SIGINT, signal.SIGTERM, signal.SIGHUP))
    except AerMPIError as exc:  # no MPI library: one line saying how to get one
        report_error(str(exc))
        return EXIT_RUN_FAILED
    try:
        return _command_run(args)
    except (Exception, KeyboardInterrupt) as exc:
        # an error on this rank only (a bug, a rank out of step), or a second Ctrl-C on this rank (its
        # KeyboardInterrupt: "now"): leaving would wait in MPI_Finalize for the other ranks forever,
        # so every rank ends now
        import traceback

        from mpi4py import MPI

        from aer_mpi.comm.watchdog import abort_job

        if MPI.COMM_WORLD.Get_size() == 1:
            raise
        if isinstance(exc, KeyboardInterrupt):
            _end_every_rank_now(signal.SIGINT)
        traceback.print_exc()
        abort_job(MPI.COMM_WORLD, EXIT_RUN_FAILED, settle=0.5)
        raise  # (not reached)
    finally:
        if getattr(args, "exiting", False):
            # after the work, SIGUSR1 has nothing left to checkpoint; SIGINT/SIGTERM keep the
            # handlers (a first one is noted, a second ends the process, as during the run)
            signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        else:  # main() called in a process that goes on (tests, a wrapper)
            uninstall_signal_handlers(previous)


_finalizing = False


def _finalize_mpi_while_the_handlers_stand() -> None:
    """At the exit of ``aer-mpi run``: ``MPI_Finalize``, which waits for every rank, while the stop
    handlers and their listener still stand. mpi4py finalizes later, after Python has put every signal
    back to its default action, and a second Ctrl-C or SIGTERM then killed the rank (hydra's BAD
    TERMINATION, exit 2 or 15) and left its MPICH shared memory (probe X)."""
    global _finalizing
    mpi = _running_mpi()
    if mpi is None:
        return
    _finalizing = True
    mpi.Finalize()


def _running_mpi() -> Any:
    """``mpi4py.MPI`` between ``MPI_Init`` and ``MPI_Finalize``, else None. Not imported here: a signal
    handler or the listener's thread calls this while the main thread may hold its import."""
    mpi = sys.modules.get("mpi4py.MPI")
    try:
        return mpi if mpi is not None and mpi.Is_initialized() and not mpi.Is_finalized() else None
    except AttributeError:  # mpi4py.MPI half imported
        return None


def _end_every_rank_now(signum: int) -> None:
    """A second stop signal on this rank (Ctrl-C twice): every rank ends now, exit 128 + signum (130
    for SIGINT). Called by the stop handler, by the signal listener's thread when the main thread
    waits inside MPI (a collective whose peer has stalled), or for a KeyboardInterrupt. Does not return."""
    import os

    from aer_mpi.comm.watchdog import abort_job, remove_unfinished_files

    mpi = _running_mpi()
    running = mpi is not None
    if not running or _finalizing:  # before MPI_Init returned, or at the exit: this process only
        from aer_mpi.comm.watchdog import release_shared_memory

        print(f"{PROG}: interrupted again: ending now", file=sys.stderr, flush=True)
        remove_unfinished_files()
        if running:  # (in MPI_Finalize, which an abort may not interrupt; the launcher ends the rest)
            release_shared_memory()
        os._exit(128 + int(signum))
    print(f"{PROG}: rank {mpi.COMM_WORLD.Get_rank()}: interrupted again: ending every rank now",
          file=sys.stderr, flush=True)
    abort_job(mpi.COMM_WORLD, 128 + int(signum), settle=0.5)


def _command_run(args: argparse.Namespace) -> int:
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    # SIGINT (Ctrl-C, forwarded by mpiexec to every rank) and SIGTERM (Slurm at a time
    # limit, scancel) cancel the run at its next checkpoint on every rank; the finished
    # circuits are still written. A second SIGINT or SIGTERM ends the process at once (SIGUSR1 never does).
    # (command_run installs the handlers.)
    try:
        sources, seed = _share(comm, lambda: _prepare(args))
    except CliError as exc:
        if rank == 0:
            report_error(str(exc))
        return exc.status

    noise_model = None
    if args.noise_model is not None:  # read on rank 0, shared with every rank (qobj/noise.py)
        try:
            noise_model = _share(comm, lambda: _read_noise_model(args.noise_model))
        except CliError as exc:
            if rank == 0:
                report_error(str(exc))
            return exc.status

    if args.save_statevector is not None:  # only now: a run refused above leaves no directory behind
        try:
            _share(comm, lambda: check_statevector_dir(args.save_statevector))
        except CliError as exc:
            if rank == 0:
                report_error(str(exc))
            return exc.status

    from aer_mpi.errors import CheckpointError, InvalidInputError, QobjValidationError, RankMissingError
    from aer_mpi.provider.backend import AerMPISimulator
    from aer_mpi.provider.progress import ProgressListener, make_listener

    if args.quiet:
        listener: ProgressListener = ProgressListener()
    else:
        listener = make_listener(args.progress or True)
    backend = AerMPISimulator(comm=comm)
    options: dict[str, Any] = {
        "shots": args.shots,
        "seed_simulator": seed,
        "precision": args.precision,
        "memory": args.memory,
        "progress": listener,
        "statevector_dir": args.save_statevector,
    }
    if args.max_memory_mb is not None:
        options["max_memory_mb"] = args.max_memory_mb
    options["parallel_experiments"] = args.parallel_experiments
    if noise_model is not None:
        options["noise_model"] = noise_model
    directory = args.resume or args.checkpoint
    if directory is not None:
        options["checkpoint_dir"] = directory
        if args.checkpoint_every is not None:
            options["checkpoint_every_seconds"] = args.checkpoint_every
    job = backend.run([s.circuit for s in sources], **options)
    exc = job.refusal()
    if isinstance(exc, (InvalidInputError, QobjValidationError)):  # a circuit or option refused before the run
        if rank == 0:
            report_error(_naming_the_file(one_line(str(exc)) or type(exc).__name__, sources))
        return EXIT_BAD_INPUT
    try:
        result = job.result()
    except futures.CancelledError as exc:
        # a signal: the circuits that finished are written, the others marked cancelled
        result = getattr(exc.__cause__, "result", None)
        if result is None:
            if rank == 0:
                report_error("interrupted before any circuit finished")
            return _interrupted_status()
    except RankMissingError as exc:
        # a rank did not come to the run (it ended, or stopped: SIGSTOP, a frozen node): the ranks are
        # out of step, and leaving would wait in MPI_Finalize for it forever. Each rank that knows says
        # so (rank 0 may be the missing one), then every rank ends, the stopped one too.
        report_error(f"rank {rank}: {one_line(str(exc))}")
        from aer_mpi.comm.watchdog import abort_job

        abort_job(comm, EXIT_RUN_FAILED, settle=0.5)
        return EXIT_RUN_FAILED  # (not reached)
    except Exception as exc:
        if rank == 0:
            prefix = ""
            if listener.index is not None and listener.index < len(sources) and not isinstance(exc, CheckpointError):
                prefix = f"{sources[listener.index].path} ({listener.where()}): "
            report_error(f"{prefix}{one_line(str(exc)) or type(exc).__name__}")
        # a checkpoint directory refused as the job starts (in use, of another job, damaged) is bad input
        return EXIT_BAD_INPUT if isinstance(exc, CheckpointError) else EXIT_RUN_FAILED

    status = EXIT_OK
    packet: Optional[str] = None
    if rank == 0:
        for source, experiment in zip(sources, result.results):
            note = (experiment.metadata or {}).get("statevector_note")
            if note:
                print(f"{PROG}: warning: {source.path}: statevector {note}", file=sys.stderr)
        try:
            document = results_document(result, sources, seed, comm.Get_size(), args.memory)
            write_json_atomically(args.output, document)
        except MemoryError:
            document = None  # (frees the document with the memory lists, if it was built, before the retry)
            packet = _results_without_memory(args, result, sources, seed, comm.Get_size())
        except Exception as exc:
            packet = f"--output {args.output}: cannot write the results: {one_line(str(exc))}"
    with bounded(comm, "rank 0 writing the results", FILE_WORK_TIMES):  # a large document: minutes
        packet = comm.bcast(packet, root=0)
    if packet is not None:
        if rank == 0:
            report_error(packet)
        status = EXIT_RUN_FAILED
    elif not result.success:
        if rank == 0:
            for source, experiment in zip(sources, result.results):
                if not experiment.success and not (experiment.metadata or {}).get("cancelled"):
                    report_error(f"{source.path}: {one_line(str(experiment.status))}")
        status = EXIT_RUN_FAILED
    # a signal to one rank only (kill -TERM of one process) still gives every rank its status; one
    # that came after every circuit had finished (while the results were written) stopped nothing
    with bounded(comm, "the end of the run"):
        signum = max(comm.allgather(stop_requested() or 0))
    stopped = any((experiment.metadata or {}).get("cancelled") for experiment in result.results)
    if signum and stopped:
        request_stop(signum)
        if rank == 0:
            done = sum(1 for experiment in result.results if experiment.success)
            print(f"{PROG}: interrupted: {done} of {len(result.results)} circuits finished, "
                  f"written to {args.output}", file=sys.stderr, flush=True)
            if directory is not None and os.path.isfile(os.path.join(directory, MANIFEST)):
                print(f"{PROG}: checkpoint in {directory}: run the same command again (or with --resume "
                      f"{directory}) to go on", file=sys.stderr, flush=True)
            elif directory is not None:
                failures = ((result.metadata or {}).get("checkpoint") or {}).get("failures", [])
                why = (f"it could not be written: {one_line(failures[-1])}" if failures else
                       "the run stopped before its first one, or at a stop that came to an idle rank")
                print(f"{PROG}: no checkpoint was written ({why}); a run again starts over", file=sys.stderr,
                      flush=True)
        status = _interrupted_status()
    return status


def _results_without_memory(args: Any, result: Any, sources: list, seed: int, ranks: int) -> str:
    """The results did not fit in memory as a document: write them without the per-shot memory lists
    (the counts are kept) where --memory asked for those, and say what happened (the run fails)."""
    shots = sum(getattr(experiment, "shots", 0) or 0 for experiment in result.results)
    if not args.memory:
        return (f"--output {args.output}: cannot write the results: out of memory while building the document "
                f"({len(result.results)} circuits): give the run more memory per rank, or run fewer circuits per job")
    try:
        document = results_document(result, sources, seed, ranks, False)
        document["memory_omitted"] = "the per-shot memory lists did not fit in memory; the counts are complete"
        write_json_atomically(args.output, document)
    except MemoryError:
        return (f"--output {args.output}: cannot write the results: out of memory while building the document, "
                f"even without the per-shot memory ({shots:,} shots): run fewer shots per job")
    except Exception as exc:
        return f"--output {args.output}: cannot write the results: {one_line(str(exc))}"
    return (f"--output {args.output}: the per-shot memory of {shots:,} shots did not fit in memory: the results "
            f"were written without it (the counts are complete, \"memory_omitted\" says so); run fewer shots per "
            f"job with --memory")


def _naming_the_file(message: str, sources: list) -> str:
    """``message`` led by the file of the circuit it names (circuits are named after their files)."""
    for source in sources:
        if f"circuit {source.circuit.name!r}" in message:
            return f"{source.path}: {message}"
    return message


def _interrupted_status() -> int:
    """128 + the signal that stopped the run (130 SIGINT, 143 SIGTERM)."""
    signum = stop_requested()
    return EXIT_INTERRUPTED if signum is None else 128 + signum


if __name__ == "__main__":  # pragma: no cover
    sys.exit(command_line())
