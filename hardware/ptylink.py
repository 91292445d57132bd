"""The far end of a serial link for the simulators: a pseudo-terminal in raw mode.

The simulator holds the master side; the driver opens :attr:`PseudoTerminal.path` with pyserial
exactly as it opens ``/dev/ttyUSB0`` in the field."""

from __future__ import annotations

import os
import tty


class PseudoTerminal:
    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        # Raw mode before anyone opens the slave: no echo, no CR/LF translation of binary frames.
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)

    def close(self) -> None:
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:  # already closed
                pass
