"""Real servers for integration tests, each started privately on 127.0.0.1 by a fixture.

One module per server (postgres, sshd, ceph, prometheus). Each binds only to loopback, keeps
every file in a temporary directory, and stops exactly the processes it started, by pid.
``storage`` turns Ceph and sshd into fixtures shared by every test package.
"""
