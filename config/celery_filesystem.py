"""kombu's filesystem transport, with every message written whole before a worker sees it.

The embedded default (no ``REDIS_URL``) runs Celery on kombu's filesystem transport
(``config.settings``).  Its ``Channel._put`` creates the message file under its final
name and only then writes the payload, while ``Channel._get`` takes any file with the
queue's name the moment it is listed, without a lock: a worker that lists the folder
in between takes an empty file, fails to decode it (``JSONDecodeError`` in ``_get``)
and stops consuming (celery/kombu#1551).  A write that fails half-way (a full disk)
leaves such a file behind for good.

Here the payload goes to a temporary file in the same folder, under a name the reader
never takes (it keeps only names ending ``.<queue>.msg``), which is then renamed into
place (``os.replace``, atomic within one filesystem): a message file either does not
exist yet or is complete.  The name keeps kombu's form (milliseconds of the monotonic
clock first) so the reader's order is unchanged.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        """Put ``payload`` onto ``queue``: written to a temporary file, then renamed."""
        folder = self.data_folder_out
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        temporary = None
        try:
            fd, temporary = tempfile.mkstemp(dir=folder, prefix=".put-", suffix=".part")
            with os.fdopen(fd, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(temporary, os.path.join(folder, name))
            temporary = None
        except OSError as exc:
            raise ChannelError(f"Cannot add file {name!r} to directory") from exc
        finally:
            if temporary is not None:
                with contextlib.suppress(OSError):
                    os.remove(temporary)


class Transport(filesystem.Transport):
    Channel = Channel
