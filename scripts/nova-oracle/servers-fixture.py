#!/usr/bin/env python3
"""Write the servers-golden fixture in both formats from one definition:

  tests/fixtures/servers-golden/oracle-fixture.json  (nova-oracle seed.py `load`)
  tests/fixtures/servers-golden/fixture.ndjson       (this service's bulk import)

Python 3 standard library only. Usage (from the repo root):
  python3 scripts/nova-oracle/servers-fixture.py [--out-dir DIR]

Both files list the servers in the same order: the insertion order, which is
Nova's tie-break for equal created_at (internal id desc: later line first).
A5 is deliberately listed before A4 (same created_at), so "later inserted
first" and "higher uuid first" give different answers.
"""
import argparse
import datetime
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_OUT = os.path.join(ROOT, 'tests', 'fixtures', 'servers-golden')

# vm_state (oracle) -> Nova status (ours); a deleted server is DELETED.
STATUS = {'active': 'ACTIVE', 'stopped': 'SHUTOFF', 'error': 'ERROR',
          'paused': 'PAUSED'}
# The action (and its compute event) that brought a server to its state.
LAST_ACTION = {'stopped': ('stop', 'compute_stop_instance'),
               'paused': ('pause', 'compute_pause_instance')}

# key, uuid suffix letter/number, project, user, name, vm_state, host,
# created_at, updated_at, deleted_at
USERS = {'proj-a': 'user-a', 'proj-b': 'user-b', 'admin': 'admin'}
SERVERS = [
    # key  project   name          vm_state   host         created_at             updated_at             deleted_at
    ('a1', 'proj-a', 'web-1',      'active',  'compute-1', '2019-03-01T10:00:00', '2019-03-01T10:00:30', None),
    ('a2', 'proj-a', 'web-10',     'stopped', 'compute-1', '2019-03-03T10:00:00', '2019-03-10T09:00:00', None),
    ('a3', 'proj-a', 'web-2',      'error',   'compute-2', '2019-03-04T10:00:00', '2019-03-04T10:01:00', None),
    ('a5', 'proj-a', 'dup',        'active',  'compute-2', '2019-03-06T10:00:00', '2019-03-06T10:00:30', None),
    ('a4', 'proj-a', 'dup',        'paused',  'compute-1', '2019-03-06T10:00:00', '2019-03-08T12:00:00', None),
    ('a6', 'proj-a', 'api.v2 (x)', 'error',   None,        '2019-03-08T10:00:00', '2019-03-08T10:00:05', None),
    ('a7', 'proj-a', 'db-1',       'active',  'compute-2', '2019-03-02T10:00:00', '2019-03-02T10:00:30', None),
    ('a8', 'proj-a', 'web-1-old',  'active',  'compute-1', '2019-03-03T12:00:00', '2019-03-09T10:00:00', '2019-03-09T10:00:00'),
    ('b1', 'proj-b', 'dup',        'active',  'compute-2', '2019-03-02T12:00:00', '2019-03-02T12:00:30', None),
    ('b2', 'proj-b', 'db-2',       'stopped', 'compute-1', '2019-03-05T12:00:00', '2019-03-09T08:00:00', None),
    ('b3', 'proj-b', 'web-3',      'paused',  'compute-2', '2019-03-07T12:00:00', '2019-03-07T13:00:00', None),
    ('e1', 'admin',  'admin-vm',   'active',  'compute-1', '2019-03-05T10:00:00', '2019-03-05T10:00:30', None),
]


def uuid_of(key):
    return '%s0000000-0000-4000-8000-00000000000%s' % (key[0], key[1])


def ts(s):
    return datetime.datetime.strptime(s, '%Y-%m-%dT%H:%M:%S')


def fmt(dt):
    return dt.strftime('%Y-%m-%dT%H:%M:%S.000000')


def actions_of(key, project, user, vm_state, host, created, updated):
    """A create action at created_at (event finishing 20 s later) and, for a
    stopped/paused server, the stop/pause that ended at updated_at."""
    c = ts(created)
    req = 'req-%s%s000000-0000-4000-8000-00000000000%%d' % (key[0], key[1])
    acts = [{
        'request_id': req % 1, 'action': 'create', 'user_id': user,
        'project_id': project, 'start_time': fmt(c),
        'updated_at': fmt(c + datetime.timedelta(seconds=20)),
        'finish_time': None, 'message': 'Error' if vm_state == 'error' else None,
        'events': [{
            'event': 'compute__do_build_and_run_instance',
            'start_time': fmt(c + datetime.timedelta(seconds=1)),
            'finish_time': fmt(c + datetime.timedelta(seconds=20)),
            'result': 'Error' if vm_state == 'error' else 'Success',
            'traceback': ('Traceback (most recent call last):\n  File "nova/compute/manager.py", '
                          'in _build_and_run_instance\nBuildAbortException: Build aborted\n'
                          if vm_state == 'error' else None),
            'host': host,
            'details': 'Build aborted' if vm_state == 'error' else None,
        }],
    }]
    if vm_state in LAST_ACTION:
        name, event = LAST_ACTION[vm_state]
        u = ts(updated)
        st = u - datetime.timedelta(seconds=5)
        acts.append({
            'request_id': req % 2, 'action': name, 'user_id': user,
            'project_id': project, 'start_time': fmt(st), 'updated_at': fmt(u),
            'finish_time': None, 'message': None,
            'events': [{
                'event': event, 'start_time': fmt(st + datetime.timedelta(seconds=1)),
                'finish_time': fmt(u), 'result': 'Success', 'traceback': None,
                'host': host, 'details': None,
            }],
        })
    return acts


def build():
    oracle, ndjson = [], []
    for key, project, name, vm_state, host, created, updated, deleted_at in SERVERS:
        user = USERS[project]
        uuid = uuid_of(key)
        acts = actions_of(key, project, user, vm_state, host, created, updated)
        o = {'uuid': uuid, 'project_id': project, 'user_id': user, 'name': name,
             'host': host, 'deleted': deleted_at is not None, 'vm_state': vm_state,
             'created_at': fmt(ts(created)), 'updated_at': fmt(ts(updated))}
        if deleted_at is not None:
            o['deleted_at'] = fmt(ts(deleted_at))
        o['actions'] = acts
        oracle.append(o)
        n = {'uuid': uuid, 'project_id': project, 'user_id': user, 'name': name,
             'status': 'DELETED' if deleted_at is not None else STATUS[vm_state],
             'host': host, 'deleted': deleted_at is not None,
             'created_at': fmt(ts(created)), 'updated_at': fmt(ts(updated))}
        if deleted_at is not None:
            n['deleted_at'] = fmt(ts(deleted_at))
        n['actions'] = acts
        ndjson.append(n)
    return {'instances': oracle}, ndjson


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out-dir', default=DEFAULT_OUT)
    a = ap.parse_args()
    oracle, lines = build()
    os.makedirs(a.out_dir, exist_ok=True)
    with open(os.path.join(a.out_dir, 'oracle-fixture.json'), 'w') as f:
        json.dump(oracle, f, indent=1)
        f.write('\n')
    with open(os.path.join(a.out_dir, 'fixture.ndjson'), 'w') as f:
        for n in lines:
            f.write(json.dumps(n, separators=(',', ':'), ensure_ascii=False) + '\n')
    print('wrote %s/{oracle-fixture.json,fixture.ndjson} (%d servers)'
          % (a.out_dir, len(lines)))


if __name__ == '__main__':
    main()
