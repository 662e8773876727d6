"""The Jupyter kernels workbench starts (sweep runs under papermill, the lab's notebooks) talk over encrypted sockets.

A kernel and its client talk over TCP on 127.0.0.1. Without CurveZMQ keys any local user could
read that traffic, and ipykernel says so on the console at every start ("Kernel is running over TCP
without encryption", once per sweep run, once per notebook opened in the lab). jupyter_client
(>= 8.10) provisions the keys itself when its kernel manager's ``transport_encryption`` is
``"auto"`` and the kernelspec declares ``"curve"`` in ``metadata.supported_encryption`` (ipykernel's
does; the lab's kernelspec copies ipykernel's metadata). Kernels that do not declare it run
unencrypted, as do all when pyzmq was built without CurveZMQ (its wheels include it).
"""

from __future__ import annotations

import zmq
from jupyter_client.manager import AsyncKernelManager
from traitlets import default

__all__ = ["ENCRYPTION", "SERVER_OPTIONS", "EncryptedKernelManager"]

ENCRYPTION = "auto" if zmq.has("curve") else "disabled"
"""The kernel managers' ``transport_encryption``."""

SERVER_OPTIONS = (f"--KernelManager.transport_encryption={ENCRYPTION}",)
"""Jupyter server options that make its kernels' transport encrypted (``workbench lab``)."""


class EncryptedKernelManager(AsyncKernelManager):
    """nbclient's kernel manager with CurveZMQ keys provisioned for every kernel (papermill's ``kernel_manager_class``)."""

    @default("transport_encryption")
    def _default_transport_encryption(self) -> str:
        return ENCRYPTION

    async def _async_interrupt_kernel(self) -> None:
        """Interrupt the kernel, except as the first step of its shutdown.

        jupyter_client interrupts every kernel (SIGINT) before it asks it to shut down, to stop a
        running cell. nbclient shuts a run's kernel down when it is idle, and an idle ipykernel logs
        the SIGINT as ``[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel.`` on the run's
        console, now and then (a race). The shutdown request needs no interrupt: ipykernel answers
        it on its control thread even while a cell runs, and the manager kills what does not exit.
        """
        if not self.shutting_down:
            await super()._async_interrupt_kernel()
