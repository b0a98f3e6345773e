"""ptkit: the cross-cutting plumbing every PtPlatform service shares.

Server bootstrap, configuration, logging, JetStream publishing and consuming, the
transactional outbox, authentication claims, the launcher and the ``ptctl`` command.
"""
