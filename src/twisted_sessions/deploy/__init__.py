"""
Running a site of several servers locally: a Redis Cluster, N ``twistd sessions`` and HAProxy.

- :mod:`.processes`: children that die with their parent, and waiting for ports.
- :mod:`.rediscluster`: :class:`LocalRedisCluster`, Debian's ``redis-server`` 7 in cluster
  mode, made with ``redis-cli --cluster create`` (resharding and failover for the tests).
- :mod:`.haproxy`: the HAProxy configuration that keeps each visitor on one server.
- :mod:`.localsite`: ``python -m twisted_sessions localsite``, all of it in one command.

This is a command-line tool, not the server: it blocks (``subprocess``, ``time.sleep``) and uses
no reactor.
"""
