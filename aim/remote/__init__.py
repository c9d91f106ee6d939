"""Remote tracking: ``aim server``, ``aim://`` repositories, the client spool and ``aim sync``.

See docs/remote.md. Nothing here is imported by ``import aim``; a remote repository loads
it on first use.
"""
