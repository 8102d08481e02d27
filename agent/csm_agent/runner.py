"""Runs a snapshot command: collect the whole environment, report it; once, on an interval, or on change."""

import logging
import os
import threading
import time

from csm_agent.client import CsmClient
from csm_agent.errors import EXIT_OK, AgentError, JournalError, SourceError, UsageError

log = logging.getLogger("csm_agent")


class Runner:
    """Binds a parsed ``snapshot`` command to its collector and the csm client."""

    def __init__(self, args, settings, sleep=time.sleep):
        self.args = args
        self.sleep = sleep
        if args.interval is not None and args.interval <= 0:
            raise UsageError("--interval must be a positive number of seconds")
        if args.max_reports is not None and args.max_reports < 1:
            raise UsageError("--max-reports must be at least 1")
        self.env_type, self.collect, self.watch_paths = self._collector()
        self.client = CsmClient(settings.host, settings.api_token, settings.org,
                                max_retries=settings.max_api_retries, compress=settings.compress,
                                dry_run=getattr(args, "dry_run", False))
        self.reports = 0
        self.last_error = None
        self.settings = settings
        self.journal_keys = self._journal_keys(settings)

    @staticmethod
    def _journal_keys(settings):
        from csm_agent.tlog import InputError, parse_public_key

        try:
            return [parse_public_key(k) for k in settings.journal_key.replace(",", " ").split()]
        except InputError as exc:
            raise UsageError(f"--journal-key: {exc}") from None

    def _collector(self):
        a = self.args
        if a.kind in ("paths", "path"):
            from csm_agent.collectors import paths

            if a.workers is not None and a.workers < 1:
                raise UsageError("--workers must be at least 1")
            specs = paths.load_paths_file(a.paths_file) if a.kind == "paths" else [(a.name, a.path, a.exclude)]
            watched = [p for _, p, _ in specs] if a.watch else []
            return paths.ENV_TYPE, lambda: paths.collect(specs, a.digest_format, a.workers), watched
        if a.kind == "docker":
            from csm_agent.collectors import docker

            return docker.ENV_TYPE, lambda: docker.collect(a.docker_host), []
        if a.kind == "k8s":
            from csm_agent.collectors import k8s

            if a.concurrency < 1:
                raise UsageError("--concurrency must be at least 1")
            return k8s.ENV_TYPE, lambda: k8s.collect(
                a.kubeconfig, a.context, a.namespaces, a.namespaces_regex, a.exclude_namespaces,
                a.exclude_namespaces_regex, a.concurrency), []
        from csm_agent.collectors import aws

        if a.kind == "ecs":
            return "ECS", lambda: aws.collect_ecs(a.clusters, a.services, a.region), []
        if a.kind == "lambda":
            return "lambda", lambda: aws.collect_lambda(a.function_names, a.region), []
        if a.kind == "s3":
            return "S3", lambda: aws.collect_s3(a.bucket, a.include, a.exclude, a.digest_format, a.region), []
        raise UsageError(f"unknown snapshot kind {a.kind!r}")

    def report_once(self):
        """Collect everything, then send it. A failure while collecting sends nothing at all."""
        started = time.monotonic()
        artifacts = self.collect()
        create = self.args.description if self.args.auto_environment else None
        answer = self.client.report(self.args.env, self.env_type, artifacts, create_missing=create)
        if answer is not None:
            detail = ", ".join(f"{k}={answer[k]}" for k in ("id", "status", "snapshot") if k in answer)
            log.info("reported %d artifacts to %s/%s in %.1fs%s", len(artifacts), self.client.org, self.args.env,
                     time.monotonic() - started, f" ({detail})" if detail else "")
            if self.settings.journal_check:
                self.check_journal()

    def check_journal(self):
        """Every agent is a witness: check csm's newest journal checkpoint against the one kept from the last
        run (signature, then a consistency proof). An inconsistent journal raises JournalError (exit 4);
        a journal that cannot be asked is a warning, since the report itself went through."""
        from csm_agent import witness
        from csm_agent.tlog import InputError, VerificationFailed

        journal = witness.Journal(self.client.host, self.client.org, self.settings.api_token)
        try:
            outcome = witness.witness(journal, self.settings.journal_state_dir, self.journal_keys,
                                      trust_on_first_use=not self.journal_keys)
        except witness.Inconsistent as exc:
            log.warning("%s", exc)
            raise JournalError("csm's journal failed the witness check (see the warning above)") from None
        except VerificationFailed as exc:
            log.warning("csm's journal checkpoint was rejected: %s (the kept checkpoint was not replaced)", exc)
            raise JournalError("csm's journal failed the witness check (see the warning above)") from None
        except (witness.FetchError, InputError) as exc:
            log.warning("csm's journal was not checked: %s (--no-journal-check turns the check off)", exc)
            return
        for message in outcome.messages:
            log.warning("journal: %s", message)
        cp = outcome.checkpoint
        if outcome.previous_size is None:
            log.info("journal: first checkpoint kept (size %d)", cp.size)
        else:
            log.info("journal: size %d -> %d, consistent", outcome.previous_size, cp.size)

    def _done(self):
        return self.args.max_reports is not None and self.reports >= self.args.max_reports

    def _report_in_loop(self):
        """One iteration of a long-running mode: errors are logged and the loop carries on."""
        self.reports += 1
        try:
            self.report_once()
            self.last_error = None
        except UsageError:
            raise
        except AgentError as exc:
            self.last_error = exc
            log.error("%s", exc)

    def _exit_code(self):
        return self.last_error.exit_code if self.last_error else EXIT_OK

    def run(self):
        if self.watch_paths:
            return self._watch()
        if self.args.interval is None:
            self.report_once()
            return EXIT_OK
        while True:
            started = time.monotonic()
            self._report_in_loop()
            if self._done():
                return self._exit_code()
            self.sleep(max(0.0, self.args.interval - (time.monotonic() - started)))

    def _watch(self):
        """Report now, then whenever a watched path changes (after --debounce seconds of quiet)."""
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        changed = threading.Event()
        last_change = [0.0]
        targets = [os.path.abspath(p) for p in self.watch_paths]

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event):
                if event.event_type in ("opened", "closed_no_write"):
                    return
                for path in (event.src_path, getattr(event, "dest_path", "")):
                    if path and any(path == t or path.startswith(t + os.sep) for t in targets):
                        last_change[0] = time.monotonic()
                        changed.set()
                        return

        observer = Observer()
        for target in targets:
            if os.path.isdir(target):
                observer.schedule(Handler(), target, recursive=True)
            elif os.path.exists(os.path.dirname(target)):
                observer.schedule(Handler(), os.path.dirname(target), recursive=False)
            else:
                raise SourceError(f"cannot watch {target}: its directory does not exist")
        observer.start()
        try:
            self._report_in_loop()
            while not self._done():
                if not changed.wait(self.args.interval):
                    self._report_in_loop()  # --interval heartbeat without a change
                    continue
                while time.monotonic() - last_change[0] < self.args.debounce:
                    time.sleep(max(0.05, self.args.debounce - (time.monotonic() - last_change[0])))
                changed.clear()
                log.info("change detected under a watched path; reporting")
                self._report_in_loop()
            return self._exit_code()
        finally:
            observer.stop()
            observer.join()
