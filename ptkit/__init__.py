"""ptkit: the runtime kit every PtPlatform service imports, and nothing more.

gRPC server bootstrap with health, reflection and graceful shutdown (``server``), the
error table (``grpc_errors``), authentication (``auth``, ``tokens``), JetStream publishing
and consuming (``messaging``, ``events``), the transactional outbox and its relay
(``sql``, ``outbox``, ``retention``), configuration (``config``), logging with
correlation (``logs``, ``correlation``), metrics (``metrics``, ``consumer_stats``) and
tracing (``tracing``, off unless configured).
Developer and operator tooling lives in ``ptctl``, which no service imports.
"""
