"""An aiosmtpd handler for tests: every accepted message is written to a directory, named by
arrival order: NNNNNN.eml (the envelope recipients on the first line, then the message as
received), and its decoded plain-text and HTML parts as NNNNNN.txt and NNNNNN.html (decoded by
Python's own e-mail parser, so tests need not undo transfer encodings themselves).

    PYTHONPATH=scripts python3 -m aiosmtpd -n -l 127.0.0.1:2525 -c smtp_sink.DirectoryHandler DIR

Recipients whose local part is "refused" get "550 mailbox unavailable", so tests can see how a
permanent refusal is handled.
"""

import email
import email.policy
import itertools
import os


class DirectoryHandler:
    def __init__(self, directory):
        self.directory = directory
        self.counter = itertools.count(1)
        os.makedirs(directory, exist_ok=True)

    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 1:
            parser.error("smtp_sink.DirectoryHandler needs exactly one argument: the directory")
        return cls(args[0])

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.split("@", 1)[0] == "refused":
            return "550 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        number = next(self.counter)
        base = os.path.join(self.directory, f"{number:06}")
        parsed = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        for subtype in ("plain", "html"):
            part = parsed.get_body(preferencelist=(subtype,))
            if part is not None:
                self._write(base + (".txt" if subtype == "plain" else ".html"),
                            part.get_content().encode())
        # The .eml last: a reader that sees it sees the decoded parts too.
        envelope_line = ("Envelope-To: " + ", ".join(envelope.rcpt_tos) + "\n").encode()
        self._write(base + ".eml", envelope_line + envelope.original_content)
        return "250 Message accepted for delivery"

    @staticmethod
    def _write(path, data):
        # Written under another name first, so a reader never sees half a file.
        with open(path + ".part", "wb") as out:
            out.write(data)
        os.replace(path + ".part", path)
