"""``manage.py backup_manifest ACTION [DIR]``: the Django side of scripts/backup and scripts/restore
(reports/backup.py; docs/operations.md, "Backup and restore").

- ``env``: where the state lives, as ``export NAME=VALUE`` lines for the scripts to ``eval``;
- ``begin DIR``: write DIR/manifest.json with the journal heads, checkpoints and migrations (before the dump);
- ``seal DIR``: add the SHA-256 of every file of the backup to its manifest (after the copy);
- ``verify-files DIR``: check those checksums (no database access);
- ``target-state``: print ``empty`` when the configured database has no table, else ``not-empty``;
- ``check DIR``: compare the restored database's journals and migrations with the manifest.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from reports import backup


class Command(BaseCommand):
    help = "Write, seal and check a backup's manifest.json for scripts/backup and scripts/restore."
    requires_system_checks = []  # the scripts call it several times; `migrate` and the server run the checks

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["env", "begin", "seal", "verify-files", "target-state", "check"])
        parser.add_argument("directory", nargs="?", help="the backup directory")

    def handle(self, *args, action, directory=None, **options):
        if action == "env":
            self.stdout.write(backup.shell_lines(backup.shell_environment()), ending="")
            return
        if action == "target-state":
            self.stdout.write("empty" if backup.database_is_empty() else "not-empty")
            return
        if not directory:
            raise CommandError(f"{action} needs the backup directory")
        path = Path(directory)
        try:
            getattr(self, action.replace("-", "_"))(path)
        except backup.BackupError as exc:
            raise CommandError(str(exc)) from None

    def begin(self, path: Path):
        manifest = backup.begin_manifest()
        backup.write_manifest(path, manifest)
        for slug, state in manifest["orgs"].items():
            head, checkpoint = state["head"], state["checkpoint"]
            at = f"checkpoint of {checkpoint['size']} leaves" if checkpoint else "no checkpoint"
            self.stdout.write(f"  {slug}: journal at #{head['index']}, {at}")
        self.stdout.write(f"  {len(manifest['orgs'])} org(s), migrations of {len(manifest['migrations'])} app(s)")

    def seal(self, path: Path):
        manifest, dropped = backup.seal(path)
        for name in dropped:
            self.stdout.write(f"  left out {name}: its bytes do not hash to its name (it was being written during "
                              "the copy, so no row of the dump refers to it)")
        size = sum(entry["size"] for entry in manifest["files"].values())
        self.stdout.write(f"  {len(manifest['files'])} file(s), {size} bytes, SHA-256 in {path / backup.MANIFEST}")
        self.stdout.write(f"  manifest SHA-256 {backup.sha256_of(path / backup.MANIFEST)} (keep it apart from the "
                          "backup: it shows the manifest itself was not rewritten)")

    def verify_files(self, path: Path):
        problems = backup.verify_files(path)
        if problems:
            for problem in problems:
                self.stderr.write(f"  {problem}")
            raise CommandError(f"the backup in {path} does not match its manifest: {problems[0]}")
        count = len(backup.read_manifest(path)["files"])
        self.stdout.write(f"  {count} file(s) match the manifest's SHA-256")

    def check(self, path: Path):
        manifest = backup.read_manifest(path)
        problems = backup.check_restored(manifest)
        if problems:
            for problem in problems:
                self.stderr.write(f"  {problem}")
            raise CommandError(f"the database does not hold what the backup recorded: {problems[0]}")
        for slug, state in manifest["orgs"].items():
            self.stdout.write(f"  {slug}: journal head #{state['head']['index']} and "
                              f"{state['checkpoints']} checkpoint(s) as recorded")
        self.stdout.write(f"  every migration the backup recorded ({len(manifest['migrations'])} app(s)) is applied")
