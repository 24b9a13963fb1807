"""Instance ids and the start-up shortcut: a lease held by a dead process of this host is void."""

from __future__ import annotations

import os
import socket
import subprocess

from service.jobs.instance import instance_is_dead, new_instance_id
from tests.service.jobs_fakes import a_dead_pid


def test_instance_ids_name_host_and_pid_and_fit_the_worker_id_column():
    instance = new_instance_id()
    host, pid, token = instance.split(":")
    assert host == socket.gethostname()[:40] and pid == str(os.getpid()) and len(token) == 8
    assert len(instance) <= 64 and new_instance_id() != instance


def test_a_process_of_this_host_that_exited_is_dead():
    me = new_instance_id()
    assert instance_is_dead(f"{socket.gethostname()[:40]}:{a_dead_pid()}:abcd1234", me=me)


def test_an_earlier_instance_with_our_own_pid_is_dead():
    me = new_instance_id()
    assert instance_is_dead(f"{socket.gethostname()[:40]}:{os.getpid()}:00000000", me=me)


def test_live_processes_other_hosts_ourselves_and_junk_are_not_declared_dead():
    me = new_instance_id()
    host = socket.gethostname()[:40]
    with subprocess.Popen(["sleep", "30"]) as alive:
        assert not instance_is_dead(f"{host}:{alive.pid}:abcd1234", me=me)
        alive.kill()
    assert not instance_is_dead(f"elsewhere:{a_dead_pid()}:abcd1234", me=me)
    assert not instance_is_dead(me, me=me)
    for junk in (None, "", "no-colons", f"{host}:notapid:x"):
        assert not instance_is_dead(junk, me=me)
