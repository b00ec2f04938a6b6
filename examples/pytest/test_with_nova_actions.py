"""What a test using the fixture looks like: the client under test is plain urllib here."""
import json
import urllib.request

SERVER = "a0000000-0000-4000-8000-000000000001"


def get(url, token, version="2.84"):
    request = urllib.request.Request(url, headers={
        "X-Auth-Token": token, "OpenStack-API-Version": f"compute {version}"})
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def test_the_owner_sees_the_seeded_actions_newest_first(nova_actions):
    listed = get(f"{nova_actions}/servers/{SERVER}/os-instance-actions", "user-a:proj-a")
    starts = [a["start_time"] for a in listed["instanceActions"]]
    assert starts and starts == sorted(starts, reverse=True)


def test_pages_carry_a_next_link(nova_actions):
    page = get(f"{nova_actions}/servers/{SERVER}/os-instance-actions?limit=1", "admin:admin")
    assert len(page["instanceActions"]) == 1
    assert "marker=" in page["links"][0]["href"]
