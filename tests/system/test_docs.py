"""System test: every command the docs name exists in the node's command table (COMMAND INFO),
and the commands the docs call unsupported really are. A doc that promises a command the server
answers with "unknown command" fails here."""

import pathlib
import re
import unittest

from shoal_harness import RespReader, ServerTestCase

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]

# Upper-case words in backticks that are not commands: replies, error codes, options, fields.
NOT_COMMANDS = {
    "ERR", "MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN", "CROSSSLOT", "WRONGTYPE", "NOAUTH", "OOM",
    "BUSY", "LOADING", "READONLY_ERR", "NOHANDLER", "HANDLERERR", "TIMEOUT", "UNREACHABLE",
    "REJECTED", "OVERFLOW", "NOEXCHANGE", "OK", "PONG", "POST", "GET_HTTP", "TAG", "GROUP",
    "REQUEST", "PUBLISH_SUBSCRIBE", "COUNT", "MATCH", "TYPE_OPT", "NOVALUES", "WITHVALUES", "NX",
    "XX", "GT", "LT", "EX", "PX", "EXAT", "PXAT", "KEEPTTL", "SLOTS", "SHARDS", "NODES", "NUMPAT",
    "NUMSUB", "CHANNELS", "ACTIVE", "SENDING", "RECEIVING", "GARBAGE", "AMD", "JSON", "YAML",
    "HTTP", "TCP", "UDP", "RESP", "RESP2", "RESP3", "HLC", "LWW", "SWIM", "API", "CLI", "TTL_",
    "FORCE", "SIGTERM", "SIGKILL", "SIGINT", "LATE", "FORMED",
    "RESTOREHASH", "DROPBUCKET",  # operations of journal records (journal.md), not commands
}
# Commands the docs name as not supported: the node must refuse them.
UNSUPPORTED = {"BGSAVE", "MULTI", "EXEC", "WATCH", "EVAL", "FUNCTION", "OBJECT", "MONITOR",
               "SHUTDOWN"}
# CLUSTER subcommands the docs name as not supported.
UNSUPPORTED_SUB = {"REPLICAS", "FAILOVER", "MEET", "ADDSLOTS", "SETSLOT"}


def documented_commands():
    """(command, subcommand or None, where) for every command a doc names."""
    found = []
    for path in DOCS:
        text = path.read_text()
        # The Supported table of commands.md: top-level words outside parentheses.
        if path.name == "commands.md":
            for row in re.findall(r"^\| [a-z][a-z ]* \| (.+) \|$", text, re.M):
                outside = re.sub(r"\([^)]*\)", " ", row)
                for word in re.findall(r"\b[A-Z][A-Z0-9.]+\b", outside):
                    found.append((word, None, f"{path.name} table"))
                for group in re.finditer(r"\b([A-Z]+) \(([^)]*)\)", row):
                    if group.group(1) in ("CLUSTER", "CONFIG", "CLIENT", "COMMAND", "PUBSUB"):
                        for sub in group.group(2).split():
                            found.append((group.group(1), sub, f"{path.name} table"))
        # Backticked spans that start with an upper-case word: `TOUCH`, `CLUSTER SHARDS`, ...
        for span in re.findall(r"`([A-Z][A-Z0-9.:_-]{2,})((?: [^`]*)?)`", text):
            word, rest = span
            if "_" in word or ":" in word or "-" in word or word in NOT_COMMANDS:
                continue
            sub = rest.split()[0] if rest.split() else None
            found.append((word, sub if word == "CLUSTER" and sub and sub.isupper() else None,
                          path.name))
    return found


class DocumentedCommandsTest(ServerTestCase):
    server_kwargs = {"threads": 1}

    def known(self, name):
        if not hasattr(self, "reader"):
            self.reader = RespReader(self.raw())
        info = self.reader.command("COMMAND", "INFO", name)
        return bool(info) and info[0] is not None

    def cluster_subcommands(self):
        reply = self.r.execute_command("CLUSTER", "HELP")
        return {line.decode().split()[0] for line in reply if line.strip()}

    def test_every_documented_command_exists(self):
        missing, checked = [], set()
        for word, sub, where in documented_commands():
            if word in UNSUPPORTED or (word, sub) in checked:
                continue
            checked.add((word, sub))
            if word in UNSUPPORTED_SUB:
                continue
            if not self.known(word):
                if word not in self.cluster_subcommands():  # `GETKEYSINSLOT` alone
                    missing.append(f"{word} ({where})")
                continue
            if word == "CLUSTER" and sub is not None and sub not in UNSUPPORTED_SUB:
                if sub not in self.cluster_subcommands():
                    missing.append(f"CLUSTER {sub} ({where})")
        self.assertGreater(len(checked), 60, "the docs' commands were not found")
        self.assertEqual(missing, [], "commands named by the docs but unknown to the server")

    def test_documented_as_unsupported_are_refused(self):
        for name in sorted(UNSUPPORTED):
            self.assertFalse(self.known(name), f"{name} is documented as unsupported but exists")


if __name__ == "__main__":
    unittest.main()
