"""The ``csm-agent`` command line: ``fingerprint`` and ``snapshot paths|path|docker|k8s|ecs|lambda|s3``."""

import argparse
import logging
import sys

from csm_agent import __version__, config
from csm_agent import fingerprint as fp
from csm_agent.errors import EXIT_OK, EXIT_USAGE, AgentError, UsageError

log = logging.getLogger("csm_agent")

EPILOG = """exit codes: 0 sent (or printed), 1 usage or configuration error, 2 the source could not be read
completely (nothing was reported), 3 csm rejected the report or stayed unreachable after all retries,
4 reported, but csm's journal failed the witness check (inconsistent with the checkpoint kept before)."""


class Parser(argparse.ArgumentParser):
    """argparse, but usage errors exit with 1 like every other configuration error."""

    def error(self, message):
        self.print_usage(sys.stderr)
        raise UsageError(message)


def _global_options():
    # Defaults are SUPPRESS so the options work before or after the sub-command without clobbering.
    g = argparse.ArgumentParser(add_help=False)
    opt = g.add_argument_group("global options")
    opt.add_argument("--host", default=argparse.SUPPRESS, help=f"csm URL (env CSM_HOST; default {config.DEFAULT_HOST})")
    opt.add_argument("--api-token", default=argparse.SUPPRESS, help="API token (env CSM_API_TOKEN); never printed")
    opt.add_argument("--org", default=argparse.SUPPRESS, help="organization slug (env CSM_ORG)")
    opt.add_argument("--config", default=argparse.SUPPRESS,
                     help="TOML config file (env CSM_AGENT_CONFIG; default ~/.config/csm/agent.toml)")
    opt.add_argument("--dry-run", action="store_true", default=argparse.SUPPRESS,
                     help="print the payload instead of sending it")
    opt.add_argument("--max-api-retries", type=int, default=argparse.SUPPRESS,
                     help="retries on connection errors, 5xx and 429 (env CSM_MAX_API_RETRIES; default 3)")
    opt.add_argument("--no-compress", dest="compress", action="store_const", const=False, default=argparse.SUPPRESS,
                     help="send reports uncompressed (for servers that refuse Content-Encoding: gzip)")
    opt.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="log every request and step")
    jr = g.add_argument_group("journal witness (after each report)")
    jr.add_argument("--journal-key", action="append", default=argparse.SUPPRESS, metavar="KEY",
                    help="pin csm's journal verifier key <name>+<hex id>+<base64>; repeatable "
                         "(default: trust the server's /key on first use and remember it)")
    jr.add_argument("--no-journal-check", dest="journal_check", action="store_const", const=False,
                    default=argparse.SUPPRESS, help="do not check csm's journal after reporting")
    jr.add_argument("--journal-state", dest="journal_state_dir", default=argparse.SUPPRESS, metavar="DIR",
                    help="where the last checkpoint seen is kept (default ~/.config/csm/journal)")
    return g


def _snapshot_options():
    s = argparse.ArgumentParser(add_help=False)
    s.add_argument("env", metavar="ENV", help="environment name in csm")
    opt = s.add_argument_group("reporting")
    opt.add_argument("--interval", type=float, metavar="SECONDS",
                     help="keep running and report every SECONDS (errors are logged, the loop goes on)")
    opt.add_argument("--auto-environment", action="store_true",
                     help="create the environment (with this command's type) if it does not exist")
    opt.add_argument("--description", default="", help="description used by --auto-environment")
    opt.add_argument("--max-reports", type=int, metavar="N", help="with --interval/--watch: stop after N reports")
    return s


def _digest_option(p):
    p.add_argument("--digest-format", choices=fp.FORMATS, default=fp.CSM,
                   help="directory digest format (default csm; kosli matches the kosli CLI byte for byte)")


def _watch_options(p):
    p.add_argument("--watch", action="store_true", help="keep running and report whenever a watched path changes")
    p.add_argument("--debounce", type=float, default=1.0, metavar="SECONDS",
                   help="with --watch: wait for SECONDS of quiet after a change before reporting (default 1)")
    p.add_argument("--workers", type=int, help="parallel hashing threads (default: 4 per CPU, at most 16)")


def build_parser():
    g = _global_options()
    snap = _snapshot_options()
    parser = Parser(prog="csm-agent", parents=[g], epilog=EPILOG,
                    description="Fingerprint what runs in an environment and report it to csm.")
    parser.add_argument("--version", action="version", version=f"csm-agent {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    p = sub.add_parser("fingerprint", parents=[g], help="print the SHA-256 fingerprint of a file or directory",
                       epilog=EPILOG)
    p.add_argument("path", metavar="PATH")
    p.add_argument("--exclude", "-x", action="append", default=[], metavar="GLOB",
                   help="exclude paths matching GLOB (relative to PATH, ** allowed); repeatable")
    _digest_option(p)
    p.add_argument("--workers", type=int, help="parallel hashing threads (default: 4 per CPU, at most 16)")

    snapshot = sub.add_parser("snapshot", help="snapshot an environment and report it to csm")
    kinds = snapshot.add_subparsers(dest="kind", required=True, parser_class=Parser)

    p = kinds.add_parser("paths", parents=[g, snap], help="files and directories listed in a paths file (server)",
                         epilog=EPILOG)
    p.add_argument("--paths-file", required=True, metavar="FILE",
                   help="YAML, JSON or TOML: version: 1, artifacts: {name: {path, exclude: [...]}}")
    _digest_option(p)
    _watch_options(p)

    p = kinds.add_parser("path", parents=[g, snap], help="one file or directory (server)", epilog=EPILOG)
    p.add_argument("--path", required=True, metavar="P")
    p.add_argument("--name", required=True, metavar="N", help="artifact name")
    p.add_argument("--exclude", "-x", action="append", default=[], metavar="GLOB")
    _digest_option(p)
    _watch_options(p)

    p = kinds.add_parser("docker", parents=[g, snap], help="running Docker containers", epilog=EPILOG)
    p.add_argument("--docker-host", help="Docker Engine address (default $DOCKER_HOST or the local unix socket)")

    p = kinds.add_parser("k8s", parents=[g, snap], help="Kubernetes pods", epilog=EPILOG)
    p.add_argument("--kubeconfig", metavar="F",
                   help="kubeconfig file (default: in-cluster, $KUBECONFIG, ~/.kube/config)")
    p.add_argument("--context", help="kubeconfig context (default: current-context)")
    p.add_argument("-n", "--namespace", "--namespaces", dest="namespaces", action="append", default=[], metavar="NS",
                   help="only these namespaces (namespace-scoped read permission is enough); repeatable")
    p.add_argument("--namespaces-regex", metavar="R", help="only namespaces matching R")
    p.add_argument("-x", "--exclude-namespace", "--exclude-namespaces", dest="exclude_namespaces", action="append",
                   default=[], metavar="NS", help="skip these namespaces; repeatable")
    p.add_argument("--exclude-namespaces-regex", metavar="R", help="skip namespaces matching R")
    p.add_argument("--concurrency", type=int, default=32, help="namespaces listed in parallel (default 32)")

    p = kinds.add_parser("ecs", parents=[g, snap], help="running ECS tasks", epilog=EPILOG)
    p.add_argument("--clusters", "--cluster", nargs="+", default=[], metavar="CLUSTER", help="default: all clusters")
    p.add_argument("--services", "--service", nargs="+", default=[], metavar="SERVICE",
                   help="only tasks of these services (needs one --cluster)")
    p.add_argument("--region", help="AWS region (default: the standard boto3 configuration)")

    p = kinds.add_parser("lambda", parents=[g, snap], help="Lambda functions", epilog=EPILOG)
    p.add_argument("--function-names", "--function-name", nargs="+", default=[], metavar="NAME",
                   help="default: every function in the region")
    p.add_argument("--region")

    p = kinds.add_parser("s3", parents=[g, snap], help="the contents of an S3 bucket", epilog=EPILOG)
    p.add_argument("--bucket", required=True, metavar="B")
    p.add_argument("--include", nargs="+", default=[], metavar="PREFIX", help="only keys starting with PREFIX")
    p.add_argument("--exclude", nargs="+", default=[], metavar="PREFIX", help="skip keys starting with PREFIX")
    _digest_option(p)
    p.add_argument("--region")
    return parser


def setup_logging(debug):
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("csm-agent: %(levelname)s: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if debug else logging.INFO)
    log.propagate = False


def main(argv=None):
    try:
        args = build_parser().parse_args(argv)
        setup_logging(getattr(args, "debug", False))
        if args.command == "fingerprint":
            if args.workers is not None and args.workers < 1:
                raise UsageError("--workers must be at least 1")
            print(fp.fingerprint(args.path, args.exclude, args.digest_format, args.workers))
            return EXIT_OK
        from csm_agent.runner import Runner  # imports requests: not needed to fingerprint

        settings = config.resolve(args)
        log.debug("settings: %r", settings)
        return Runner(args, settings).run()
    except AgentError as exc:
        print(f"csm-agent: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("csm-agent: interrupted", file=sys.stderr)
        return 130
    except SystemExit as exc:  # --help / --version
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
