#!/usr/bin/env python3
"""Record reference exchanges for GET /v2.1/servers, /servers/detail and
/servers/{id} from a real Nova (the nova-oracle developer tool), into
tests/fixtures/servers-golden/cases/NNN-name.json.

Python 3 standard library only (http.client, json, subprocess).

By default it runs the whole cycle with the oracle in this folder (or the
one given by --oracle or $NOVA_ORACLE): setup.sh, run.sh PORT STATE
--fresh, seed.py load oracle-fixture.json, a check that Nova stores and shows
exactly the fixture's times and statuses, the recording, and stop.sh (always,
even on failure). With --no-start it only checks and records against an
oracle already running on --port with the fixture loaded.

Every request carries Host: 127.0.0.1:28774 (the hrefs are built from it),
whatever port the oracle listens on. The case list below is fixed, so files
are rewritten identically except the random x-*-request-id values.
"""
import argparse
import glob
import http.client
import json
import os
import subprocess
import sys
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOLDEN = os.path.join(ROOT, 'tests', 'fixtures', 'servers-golden')
HOST = '127.0.0.1:28774'
KEEP_HEADERS = {'content-type', 'openstack-api-version', 'x-openstack-nova-api-version',
                'vary', 'x-openstack-request-id', 'x-compute-request-id', 'content-length'}

OWNER = 'user-a:proj-a'
OTHER = 'user-b:proj-b'
ADMIN = 'admin:admin'
NOROLE = 'user-a:proj-a:'
READER = 'user-a:proj-a:reader'


def U(key):
    return '%s0000000-0000-4000-8000-00000000000%s' % (key[0], key[1])


A1, A2, A3, A4, A5, A6, A7, A8 = (U('a%d' % i) for i in range(1, 9))
B1, B2, B3 = (U('b%d' % i) for i in range(1, 4))
E1 = U('e1')
UNKNOWN = 'f0000000-0000-4000-8000-000000000000'
q = urllib.parse.quote  # for query values: quote(v, safe='')


def S(path=''):
    return '/v2.1/servers' + path


# (name, description, token, microversion, path) or, instead of a path,
# ('follow', CASE) : the path of CASE's response's "next" link.
CASES = [
    # --- show -------------------------------------------------------------
    ('show-owner-mv2.1', 'show web-1 (A1) as its owner at 2.1', OWNER, '2.1', S('/' + A1)),
    ('show-owner-mv2.47', 'show A1 as owner at 2.47 (flavor embedded)', OWNER, '2.47', S('/' + A1)),
    ('show-owner-mv2.75', 'show A1 as owner at 2.75', OWNER, '2.75', S('/' + A1)),
    ('show-owner-mv2.100', 'show A1 as owner at 2.100', OWNER, '2.100', S('/' + A1)),
    ('show-admin-mv2.1', 'show A1 (proj-a) as admin at 2.1: OS-EXT-SRV-ATTR fields appear', ADMIN, '2.1', S('/' + A1)),
    ('show-admin-mv2.100', 'show A1 (proj-a) as admin at 2.100', ADMIN, '2.100', S('/' + A1)),
    ('show-other-project-mv2.100', 'user-b (proj-b) shows proj-a\'s A1: 404', OTHER, '2.100', S('/' + A1)),
    ('show-norole-mv2.100', 'token without roles (user-a:proj-a:) shows its own A1', NOROLE, '2.100', S('/' + A1)),
    ('show-reader-mv2.100', 'reader role only shows its own A1', READER, '2.100', S('/' + A1)),
    ('show-deleted-owner', 'owner shows its deleted server A8 (web-1-old): 404', OWNER, '2.100', S('/' + A8)),
    ('show-deleted-admin', 'admin shows the deleted server A8: 404', ADMIN, '2.100', S('/' + A8)),
    ('show-unknown-id', 'show a well-formed uuid no server has', OWNER, '2.100', S('/' + UNKNOWN)),
    ('show-malformed-id', 'show id "abc"', OWNER, '2.100', S('/abc')),
    ('show-hostless-mv2.100', 'show A6 (no host, ERROR, name with regex characters) as owner: hostId ""', OWNER, '2.100', S('/' + A6)),
    ('show-hostless-admin-mv2.100', 'show A6 (no host) as admin', ADMIN, '2.100', S('/' + A6)),
    ('show-paused-mv2.100', 'show A4 (PAUSED, created_at tied with A5) as owner', OWNER, '2.100', S('/' + A4)),
    ('show-shutoff-other-owner-mv2.1', 'show B2 (SHUTOFF) as its owner user-b at 2.1', OTHER, '2.1', S('/' + B2)),

    ('show-norole-unknown-id', 'token without roles shows a uuid no server has: 404 or 403 first?', NOROLE, '2.100', S('/' + UNKNOWN)),
    ('show-norole-other-project', 'token without roles (proj-a) shows proj-b\'s B1', NOROLE, '2.100', S('/' + B1)),

    # --- index and detail: scope -----------------------------------------
    ('list-owner-mv2.1', 'index as user-a: proj-a\'s live servers, created_at desc, id desc', OWNER, '2.1', S()),
    ('list-owner-mv2.100', 'index as user-a at 2.100', OWNER, '2.100', S()),
    ('detail-owner-mv2.1', 'detail as user-a at 2.1', OWNER, '2.1', S('/detail')),
    ('detail-owner-mv2.100', 'detail as user-a at 2.100', OWNER, '2.100', S('/detail')),
    ('list-other-mv2.100', 'index as user-b: proj-b only', OTHER, '2.100', S()),
    ('list-reader-mv2.100', 'index with the reader role only', READER, '2.100', S()),
    ('list-norole-mv2.100', 'index with a token without roles', NOROLE, '2.100', S()),
    ('detail-norole-mv2.100', 'detail with a token without roles', NOROLE, '2.100', S('/detail')),
    ('list-admin-own-project', 'index as admin without all_tenants: only the admin project', ADMIN, '2.100', S()),
    ('detail-admin-own-project', 'detail as admin without all_tenants: only the admin project', ADMIN, '2.100', S('/detail')),
    ('list-admin-all-tenants-1', 'index as admin, all_tenants=1: every live server', ADMIN, '2.100', S('?all_tenants=1')),
    ('detail-admin-all-tenants-1-mv2.1', 'detail as admin, all_tenants=1, at 2.1', ADMIN, '2.1', S('/detail?all_tenants=1')),
    ('detail-admin-all-tenants-1-mv2.100', 'detail as admin, all_tenants=1, at 2.100', ADMIN, '2.100', S('/detail?all_tenants=1')),
    ('list-admin-all-tenants-true', 'all_tenants=true as admin', ADMIN, '2.100', S('?all_tenants=true')),
    ('list-admin-all-tenants-empty', 'all_tenants= (empty value) as admin', ADMIN, '2.100', S('?all_tenants=')),
    ('list-admin-all-tenants-bare', 'all_tenants without "=" as admin', ADMIN, '2.100', S('?all_tenants')),
    ('list-admin-all-tenants-0', 'all_tenants=0 as admin: own project only', ADMIN, '2.100', S('?all_tenants=0')),
    ('list-admin-all-tenants-bogus', 'all_tenants=abc as admin', ADMIN, '2.100', S('?all_tenants=abc')),
    ('list-owner-all-tenants-1', 'non-admin all_tenants=1: 403', OWNER, '2.100', S('?all_tenants=1')),
    ('detail-owner-all-tenants-1-mv2.1', 'non-admin all_tenants=1 on detail at 2.1: 403', OWNER, '2.1', S('/detail?all_tenants=1')),
    ('list-owner-all-tenants-0', 'non-admin all_tenants=0: 200, own project', OWNER, '2.100', S('?all_tenants=0')),
    ('list-owner-all-tenants-empty', 'non-admin all_tenants= (empty)', OWNER, '2.100', S('?all_tenants=')),

    # --- name filter -----------------------------------------------------
    ('list-name-web-1', 'name=web-1 is a regex search: web-1 and web-10 (web-1-old is deleted)', OWNER, '2.100', S('?name=web-1')),
    ('list-name-anchored', 'name=^web-1$', OWNER, '2.100', S('?name=' + q('^web-1$', safe=''))),
    ('backend-list-name-case', 'name=WEB: the regex is case-sensitive on SQLite/PostgreSQL (MySQL REGEXP would match web-*)', OWNER, '2.100', S('?name=WEB')),
    ('list-name-invalid-regex', 'name=( is not a valid regex', OWNER, '2.100', S('?name=' + q('(', safe=''))),
    ('list-name-invalid-regex-mv2.1', 'name=( at 2.1', OWNER, '2.1', S('?name=' + q('(', safe=''))),
    ('list-name-empty', 'name= (empty)', OWNER, '2.100', S('?name=')),
    ('list-name-dup-owner', 'name=dup as user-a: A4 and A5 (same created_at; later inserted first)', OWNER, '2.100', S('?name=dup')),
    ('list-name-dup-admin-all-tenants', 'name=dup as admin with all_tenants=1: A4, A5 and B1', ADMIN, '2.100', S('?all_tenants=1&name=dup')),
    ('list-name-escaped-special', 'name=api\\.v2 \\(x\\) (escaped regex)', OWNER, '2.100', S('?name=' + q('api\\.v2 \\(x\\)', safe=''))),
    ('list-name-unescaped-special', 'name=api.v2 (x) taken as a regex: "(x)" is a group, so the literal name does not match', OWNER, '2.100', S('?name=' + q('api.v2 (x)', safe=''))),
    ('list-name-dot', 'name=api.v2 (dot matches any char; substring search)', OWNER, '2.100', S('?name=api.v2')),
    ('list-name-nomatch', 'name matching nothing: empty list', OWNER, '2.100', S('?name=nothing-here')),
    ('detail-name-web-1-changes-since', 'name=web-1 with changes-since: the deleted web-1-old appears as DELETED', OWNER, '2.100', S('/detail?name=web-1&changes-since=2019-01-01T00:00:00Z')),

    # --- changes-since / changes-before ----------------------------------
    ('detail-changes-since-inclusive', 'changes-since = A5\'s updated_at (inclusive); deleted A8 included with status DELETED', OWNER, '2.100', S('/detail?changes-since=2019-03-06T10:00:30Z')),
    ('list-changes-since-mv2.1', 'changes-since at 2.1 (index)', OWNER, '2.1', S('?changes-since=2019-03-06T10:00:30Z')),
    ('detail-changes-since-no-tz', 'changes-since without a zone (taken as UTC)', OWNER, '2.100', S('/detail?changes-since=2019-03-06T10:00:30')),
    ('detail-changes-since-offset', 'changes-since with +01:00 offset (= 10:00:30Z)', OWNER, '2.100', S('/detail?changes-since=' + q('2019-03-06T11:00:30+01:00', safe=''))),
    ('detail-changes-before-inclusive-mv2.66', 'changes-before = A3\'s updated_at (inclusive) at 2.66', OWNER, '2.66', S('/detail?changes-before=2019-03-04T10:01:00Z')),
    ('detail-changes-before-deleted-mv2.66', 'changes-before = A8\'s updated_at alone at 2.66: the deleted A8 is listed too (DELETED)', OWNER, '2.66', S('/detail?changes-before=2019-03-09T10:00:00Z')),
    ('detail-changes-both-mv2.66', 'changes-since and changes-before together at 2.66 (both bounds inclusive)', OWNER, '2.66', S('/detail?changes-since=2019-03-04T10:01:00Z&changes-before=2019-03-09T10:00:00Z')),
    ('detail-changes-before-mv2.65', 'changes-before at 2.65 (before the parameter exists)', OWNER, '2.65', S('/detail?changes-before=2019-03-04T10:01:00Z')),
    ('detail-changes-before-mv2.1', 'changes-before at 2.1', OWNER, '2.1', S('/detail?changes-before=2019-03-04T10:01:00Z')),
    ('list-changes-since-bad', 'changes-since=abc: 400', OWNER, '2.100', S('?changes-since=abc')),
    ('list-changes-since-bad-mv2.1', 'changes-since=abc at 2.1', OWNER, '2.1', S('?changes-since=abc')),
    ('list-changes-before-bad-mv2.66', 'changes-before=abc at 2.66', OWNER, '2.66', S('?changes-before=abc')),
    ('list-changes-before-lt-since-mv2.66', 'changes-before earlier than changes-since: 400', OWNER, '2.66', S('?changes-since=2019-03-05T00:00:00Z&changes-before=2019-03-04T00:00:00Z')),
    ('detail-admin-all-tenants-changes-since', 'admin all_tenants=1 with changes-since: deleted servers of every project', ADMIN, '2.100', S('/detail?all_tenants=1&changes-since=2019-03-05T00:00:00Z')),

    # --- deleted -----------------------------------------------------------
    ('detail-admin-deleted-true-all-tenants', 'deleted=true as admin with all_tenants=1: only deleted servers', ADMIN, '2.100', S('/detail?all_tenants=1&deleted=true')),
    ('detail-admin-deleted-true', 'deleted=true as admin without all_tenants (admin project has none)', ADMIN, '2.100', S('/detail?deleted=true')),
    ('detail-owner-deleted-true', 'deleted=true as non-admin', OWNER, '2.100', S('/detail?deleted=true')),
    ('list-owner-deleted-false', 'deleted=false as owner', OWNER, '2.100', S('?deleted=false')),

    # --- project_id / tenant_id ----------------------------------------------
    ('list-admin-project-id', 'all_tenants=1&project_id=proj-b as admin', ADMIN, '2.100', S('?all_tenants=1&project_id=proj-b')),
    ('list-admin-tenant-id', 'all_tenants=1&tenant_id=proj-b as admin', ADMIN, '2.100', S('?all_tenants=1&tenant_id=proj-b')),
    ('list-admin-project-id-no-all-tenants', 'project_id=proj-b as admin without all_tenants', ADMIN, '2.100', S('?project_id=proj-b')),
    ('list-owner-project-id', 'project_id=proj-b as user-a (non-admin)', OWNER, '2.100', S('?project_id=proj-b')),

    # --- limit / marker --------------------------------------------------
    ('list-owner-limit-2-page-1', 'limit=2 as owner: first page with servers_links next', OWNER, '2.100', S('?limit=2')),
    ('list-owner-limit-2-page-2', 'the next href of page 1', OWNER, '2.100', ('follow', 'list-owner-limit-2-page-1')),
    ('list-owner-limit-2-page-3', 'the next href of page 2 (crosses the A4/A5 created_at tie)', OWNER, '2.100', ('follow', 'list-owner-limit-2-page-2')),
    ('list-owner-limit-2-page-4', 'the next href of page 3: last, partial page, no servers_links', OWNER, '2.100', ('follow', 'list-owner-limit-2-page-3')),
    ('detail-owner-limit-7', 'limit=7 on detail: exactly the 7 live proj-a servers, still a next link', OWNER, '2.100', S('/detail?limit=7')),
    ('detail-owner-limit-7-next', 'the next href of the full page: empty page', OWNER, '2.100', ('follow', 'detail-owner-limit-7')),
    ('list-admin-all-tenants-limit-4-page-1', 'admin all_tenants=1&limit=4: all_tenants kept in the next link', ADMIN, '2.100', S('?all_tenants=1&limit=4')),
    ('list-admin-all-tenants-limit-4-page-2', 'the next href of page 1', ADMIN, '2.100', ('follow', 'list-admin-all-tenants-limit-4-page-1')),
    ('list-admin-all-tenants-limit-4-page-3', 'the next href of page 2', ADMIN, '2.100', ('follow', 'list-admin-all-tenants-limit-4-page-2')),
    ('detail-owner-limit-2-filters', 'limit=2 with name and changes-since: which parameters the next link keeps', OWNER, '2.100', S('/detail?name=' + q('^web', safe='') + '&changes-since=2019-01-01T00:00:00Z&limit=2')),
    ('detail-owner-limit-2-filters-next', 'the next href of that page: marker keeps its sorted place', OWNER, '2.100', ('follow', 'detail-owner-limit-2-filters')),
    ('list-owner-limit-1-name-special', 'limit=1 with an escaped name holding spaces and backslashes: how the next link encodes it', OWNER, '2.100', S('?name=' + q('api\\.v2 \\(x\\)', safe='') + '&limit=1')),
    ('list-owner-limit-empty', 'limit= (empty)', OWNER, '2.100', S('?limit=')),
    ('list-owner-limit-0', 'limit=0', OWNER, '2.100', S('?limit=0')),
    ('list-owner-limit-minus-1', 'limit=-1', OWNER, '2.100', S('?limit=-1')),
    ('list-owner-limit-abc', 'limit=abc', OWNER, '2.100', S('?limit=abc')),
    ('list-owner-limit-abc-mv2.1', 'limit=abc at 2.1', OWNER, '2.1', S('?limit=abc')),
    ('list-owner-limit-1001', 'limit=1001 (max_limit is 1000; fewer servers than that)', OWNER, '2.100', S('?limit=1001')),
    ('list-owner-marker-deleted', 'marker = the deleted server A8 (created between A2 and A3)', OWNER, '2.100', S('?marker=' + A8)),
    ('list-owner-marker-other-project', 'marker = B1, a proj-b server, as user-a', OWNER, '2.100', S('?marker=' + B1)),
    ('list-owner-marker-unknown', 'marker = a uuid no server has: 400', OWNER, '2.100', S('?marker=' + UNKNOWN)),
    ('list-owner-marker-unknown-mv2.1', 'marker unknown at 2.1', OWNER, '2.1', S('?marker=' + UNKNOWN)),
    ('list-owner-marker-empty', 'marker= (empty)', OWNER, '2.100', S('?marker=')),
    ('list-owner-marker-abc', 'marker=abc (not a uuid)', OWNER, '2.100', S('?marker=abc')),
    ('list-owner-marker-tie', 'marker = A4 (tied created_at with A5) with limit=1', OWNER, '2.100', S('?marker=' + A4 + '&limit=1')),

    # --- which error comes first ---------------------------------------
    ('order-owner-all-tenants-1-limit-abc', 'non-admin all_tenants=1 with limit=abc: query validation (400) or policy (403) first?', OWNER, '2.100', S('?all_tenants=1&limit=abc')),
    ('order-norole-limit-abc', 'no-role token with limit=abc', NOROLE, '2.100', S('?limit=abc')),
    ('order-owner-changes-reversed-marker-unknown', 'changes-before < changes-since and an unknown marker at 2.66', OWNER, '2.66', S('?changes-since=2019-03-05T00:00:00Z&changes-before=2019-03-04T00:00:00Z&marker=' + UNKNOWN)),
    ('order-owner-all-tenants-1-marker-unknown', 'non-admin all_tenants=1 with an unknown marker', OWNER, '2.100', S('?all_tenants=1&marker=' + UNKNOWN)),

    # --- other parameters --------------------------------------------------
    ('list-owner-unknown-param-mv2.74', 'foo=bar at 2.74: ignored', OWNER, '2.74', S('?foo=bar')),
    ('list-owner-unknown-param-mv2.75', 'foo=bar at 2.75: 400', OWNER, '2.75', S('?foo=bar')),
    ('detail-owner-unknown-param-mv2.75', 'foo=bar on detail at 2.75: 400', OWNER, '2.75', S('/detail?foo=bar')),
    ('list-owner-underscore-param-mv2.75', '_foo=bar at 2.75', OWNER, '2.75', S('?_foo=bar')),
    ('list-owner-sort-name-asc', 'sort_key=display_name&sort_dir=asc', OWNER, '2.100', S('?sort_key=display_name&sort_dir=asc')),
    ('unstable-list-owner-sort-key-bogus', 'sort_key=bogus: the message lists the allowed keys in Python set order, which changes from one Nova start to the next', OWNER, '2.100', S('?sort_key=bogus')),
    ('list-owner-sort-dir-bogus', 'sort_dir=bogus', OWNER, '2.100', S('?sort_dir=bogus')),
    ('list-owner-status-active', 'status=ACTIVE', OWNER, '2.100', S('?status=ACTIVE')),
    ('list-owner-status-shutoff-lower', 'status=shutoff (lower case)', OWNER, '2.100', S('?status=shutoff')),
    ('list-owner-status-bogus-mv2.38', 'status=bogus at 2.38', OWNER, '2.38', S('?status=bogus')),
    ('list-owner-status-bogus-mv2.37', 'status=bogus at 2.37', OWNER, '2.37', S('?status=bogus')),
    ('list-owner-status-deleted', 'status=DELETED as owner', OWNER, '2.100', S('?status=DELETED')),
    ('list-owner-ip', 'ip=10.0.0.1 (no ports in the oracle)', OWNER, '2.100', S('?ip=10.0.0.1')),
    ('list-owner-flavor', 'flavor=1 (m1.tiny)', OWNER, '2.100', S('?flavor=1')),
    ('list-owner-image', 'image=<the default image id>', OWNER, '2.100', S('?image=70a599e0-31e7-49b7-b260-868f441e862b')),
    ('list-owner-host-param', 'host=compute-1 as non-admin', OWNER, '2.100', S('?host=compute-1')),
    ('list-admin-host-param', 'host=compute-1 as admin with all_tenants=1', ADMIN, '2.100', S('?all_tenants=1&host=compute-1')),
]


def request(port, token, mv, path):
    headers = {'Host': HOST, 'Accept': 'application/json', 'X-Auth-Token': token,
               'OpenStack-API-Version': 'compute ' + mv}
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=60)
    try:
        conn.request('GET', path, headers=headers)
        r = conn.getresponse()
        raw = r.read().decode('utf-8')
        hdrs = [[k, v] for k, v in r.getheaders() if k.lower() in KEEP_HEADERS]
        status, reason = r.status, r.reason
    finally:
        conn.close()
    try:
        body, is_json = json.loads(raw), True
    except ValueError:
        body, is_json = None, False
    return {
        'method': 'GET', 'path': path, 'headers': headers, 'body': None,
    }, {
        'status': status, 'reason': reason, 'headers': hdrs, 'body': body,
        'body_is_json': is_json, 'body_raw': raw,
    }


def next_path(resp):
    links = (resp['body'] or {}).get('servers_links') or []
    nxt = [l['href'] for l in links if l.get('rel') == 'next']
    if not nxt:
        raise SystemExit('expected a next link in %r' % resp['body_raw'][-300:])
    u = urllib.parse.urlsplit(nxt[0])
    return u.path + ('?' + u.query if u.query else '')


def check_fixture(port):
    """Nova must show exactly the ndjson's times and statuses."""
    with open(os.path.join(GOLDEN, 'fixture.ndjson')) as f:
        want = [json.loads(line) for line in f if line.strip()]
    _, r = request(port, ADMIN, '2.100',
                   S('/detail?all_tenants=1&changes-since=2000-01-01T00:00:00Z'))
    got = {s['id']: s for s in r['body']['servers']}
    bad = []
    z = lambda t: t[:19] + 'Z'  # "2019-03-01T10:00:00.000000" -> "...00Z"
    for w in want:
        s = got.get(w['uuid'])
        if s is None:
            bad.append('%s missing' % w['uuid'])
            continue
        exp = {'created': z(w['created_at']), 'updated': z(w['updated_at']),
               'status': w['status'], 'name': w['name'], 'tenant_id': w['project_id'],
               'user_id': w['user_id'],
               'OS-EXT-SRV-ATTR:host': w['host']}
        for k, v in exp.items():
            if s.get(k) != v:
                bad.append('%s %s: nova %r, ndjson %r' % (w['uuid'], k, s.get(k), v))
        if w['deleted'] and z(w['deleted_at']) != s['updated']:
            bad.append('%s deleted_at != updated' % w['uuid'])
    if len(got) != len(want):
        bad.append('nova lists %d servers, ndjson has %d' % (len(got), len(want)))
    if bad:
        raise SystemExit('fixture check failed:\n  ' + '\n  '.join(bad))
    print('fixture check ok: %d servers' % len(want))


def record(port, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    for old in glob.glob(os.path.join(out_dir, '[0-9][0-9][0-9]-*.json')):
        os.unlink(old)
    names = [c[0] for c in CASES]
    assert len(set(names)) == len(names), 'duplicate case names'
    responses = {}
    for n, (name, desc, token, mv, path) in enumerate(CASES, 1):
        if isinstance(path, tuple):
            path = next_path(responses[path[1]])
        req, resp = request(port, token, mv, path)
        responses[name] = resp
        case = {'name': name, 'description': desc, 'request': req, 'response': resp}
        fn = os.path.join(out_dir, '%03d-%s.json' % (n, name))
        with open(fn, 'w') as f:
            json.dump(case, f, indent=2, ensure_ascii=False)
            f.write('\n')
        print('%03d %d %s %s' % (n, resp['status'], name, path))
    print('recorded %d cases into %s' % (len(CASES), out_dir))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--oracle', default=os.environ.get('NOVA_ORACLE') or os.path.dirname(os.path.abspath(__file__)),
                    help='the nova-oracle folder (default $NOVA_ORACLE, else this folder)')
    ap.add_argument('--port', type=int, default=28790)
    ap.add_argument('--state-dir', help='default /tmp/nova-oracle-PORT')
    ap.add_argument('--no-start', action='store_true',
                    help='use an oracle already running on --port with '
                         'oracle-fixture.json loaded')
    ap.add_argument('--out-dir', default=os.path.join(GOLDEN, 'cases'))
    a = ap.parse_args()
    if a.no_start:
        check_fixture(a.port)
        record(a.port, a.out_dir)
        return
    if not a.oracle:
        ap.error('give --oracle DIR or NOVA_ORACLE=DIR, '
                 'or --no-start')
    oracle = os.path.abspath(a.oracle)
    state = a.state_dir or '/tmp/nova-oracle-%d' % a.port
    run = lambda *args: subprocess.run(list(args), check=True)
    run(os.path.join(oracle, 'setup.sh'))
    run(os.path.join(oracle, 'run.sh'), str(a.port), state, '--fresh')
    try:
        run(os.path.join(oracle, 'seed.py'), '--state-dir', state, 'load',
            os.path.join(GOLDEN, 'oracle-fixture.json'))
        check_fixture(a.port)
        record(a.port, a.out_dir)
    finally:
        subprocess.run([os.path.join(oracle, 'stop.sh'), state])


if __name__ == '__main__':
    main()
