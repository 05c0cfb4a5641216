"""Group robots: WeCom and DingTalk webhooks (mocked with ``responses``), DingTalk's
signature, errcode handling, and digests that carry counts and a link only."""

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from notifications.channels import GroupDigest, dingtalk_sign, dingtalk_signed_url
from notifications.models import Delivery, DeliveryStatus, GroupRobot, GroupRobotKind
from notifications.selectors import group_robots_for
from notifications.services import deliveries_dispatch, group_digest_send

pytestmark = pytest.mark.django_db

WECOM_URL = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=wecom-secret-key-123"
DINGTALK_URL = "https://oapi.dingtalk.com/robot/send?access_token=ding-token-456"
DIGEST = GroupDigest(
    title="法学院 晨检未报", counts={"未报合计": 3, "法学A2024-1班": 2, "法学A2024-2班": 1}, link="/r/1/"
)


@pytest.fixture
def wecom(db):
    return GroupRobot.objects.create(name="法学院辅导员群", kind=GroupRobotKind.WECOM, webhook_url=WECOM_URL)


@pytest.fixture
def dingtalk(db):
    return GroupRobot.objects.create(
        name="学工部值班群", kind=GroupRobotKind.DINGTALK, webhook_url=DINGTALK_URL, secret="SECtest-secret"
    )


def sent_body(call) -> dict:
    return json.loads(call.request.body)


# -- DingTalk signature ------------------------------------------------------
def test_dingtalk_signature_matches_known_value():
    # printf '1700000000000\nSECtest-secret' | openssl dgst -sha256 -hmac SECtest-secret -binary | base64
    #   → LC7hxZ4wslL+P7j7gu1hoQ+wzByekL+yWgiUMekZs0g=   (then URL-encoded)
    assert dingtalk_sign("SECtest-secret", 1700000000000) == "LC7hxZ4wslL%2BP7j7gu1hoQ%2BwzByekL%2ByWgiUMekZs0g%3D"


def test_dingtalk_signed_url_appends_timestamp_and_sign():
    url = dingtalk_signed_url(DINGTALK_URL, "SECtest-secret", 1700000000000)
    assert url == (f"{DINGTALK_URL}&timestamp=1700000000000&sign=LC7hxZ4wslL%2BP7j7gu1hoQ%2BwzByekL%2ByWgiUMekZs0g%3D")
    assert dingtalk_signed_url(DINGTALK_URL, "") == DINGTALK_URL  # keyword-only security: unsigned


def test_dingtalk_delivery_posts_markdown_to_a_freshly_signed_url(http, dingtalk):
    call = http.post(urlsplit(DINGTALK_URL)._replace(query="").geturl(), json={"errcode": 0, "errmsg": "ok"})
    group_digest_send(robot=dingtalk, digest=DIGEST, dedupe_key="missing:1")

    deliveries_dispatch()

    [request] = [c.request for c in call.calls]
    query = parse_qs(urlsplit(request.url).query)
    assert query["access_token"] == ["ding-token-456"]
    assert query["sign"] == [parse_qs(f"s={dingtalk_sign('SECtest-secret', int(query['timestamp'][0]))}")["s"][0]]
    body = json.loads(request.body)
    assert body["msgtype"] == "markdown"
    assert body["markdown"]["title"] == "法学院 晨检未报"
    assert "- 法学A2024-1班：**2**" in body["markdown"]["text"]
    assert Delivery.objects.get().status == DeliveryStatus.SENT


def test_dingtalk_too_fast_is_retried_and_bad_signature_is_dead(http, dingtalk):
    base = urlsplit(DINGTALK_URL)._replace(query="").geturl()
    http.post(base, json={"errcode": 130101, "errmsg": "send too fast"})
    group_digest_send(robot=dingtalk, digest=DIGEST, dedupe_key="a")
    deliveries_dispatch()
    assert Delivery.objects.get().status == DeliveryStatus.FAILED

    http.replace(responses.POST, base, json={"errcode": 310000, "errmsg": "sign not match"})
    Delivery.objects.all().delete()
    group_digest_send(robot=dingtalk, digest=DIGEST, dedupe_key="b")
    deliveries_dispatch()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.DEAD
    assert delivery.last_error == "errcode 310000: sign not match"


# -- WeCom -------------------------------------------------------------------
def test_wecom_delivery_posts_markdown(http, wecom):
    call = http.post(WECOM_URL, json={"errcode": 0, "errmsg": "ok"})
    assert group_digest_send(robot=wecom, digest=DIGEST, dedupe_key="missing:1") is True

    deliveries_dispatch()

    assert sent_body(call.calls[0]) == {
        "msgtype": "markdown",
        "markdown": {
            "content": "**法学院 晨检未报**\n- 未报合计：**3**\n- 法学A2024-1班：**2**\n- 法学A2024-2班：**1**\n"
            "[查看详情](/r/1/)"
        },
    }
    delivery = Delivery.objects.get()
    assert (delivery.channel, delivery.status, delivery.address) == ("wecom", DeliveryStatus.SENT, wecom.name)


def test_wecom_link_is_absolute_when_site_url_is_set(http, wecom, settings):
    settings.TONGXIN = {**settings.TONGXIN, "SITE_URL": "https://tongxin.example.edu.cn"}
    call = http.post(WECOM_URL, json={"errcode": 0, "errmsg": "ok"})
    group_digest_send(robot=wecom, digest=DIGEST, dedupe_key="k")
    deliveries_dispatch()
    assert "[查看详情](https://tongxin.example.edu.cn/r/1/)" in sent_body(call.calls[0])["markdown"]["content"]


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        ({"errcode": 93000, "errmsg": "invalid webhook url"}, DeliveryStatus.DEAD),
        ({"errcode": 45009, "errmsg": "api freq out of limit"}, DeliveryStatus.FAILED),
        ({"errcode": -1, "errmsg": "system busy"}, DeliveryStatus.FAILED),
    ],
)
def test_wecom_nonzero_errcode_is_an_error(http, wecom, answer, status):
    http.post(WECOM_URL, json=answer)
    group_digest_send(robot=wecom, digest=DIGEST, dedupe_key="k")

    deliveries_dispatch()

    delivery = Delivery.objects.get()
    assert delivery.status == status
    assert delivery.last_error == f"errcode {answer['errcode']}: {answer['errmsg']}"


@pytest.mark.parametrize(
    ("reply", "status"),
    [
        ({"status": 502, "body": "bad gateway"}, DeliveryStatus.FAILED),
        ({"status": 404, "body": "not found"}, DeliveryStatus.DEAD),
        ({"body": "<html>not json</html>"}, DeliveryStatus.FAILED),
        ({"body": requests.ConnectTimeout("timed out: key=wecom-secret-key-123")}, DeliveryStatus.FAILED),
    ],
)
def test_http_failures_and_secrets_stay_out_of_the_error(http, wecom, reply, status):
    http.post(WECOM_URL, **reply)
    group_digest_send(robot=wecom, digest=DIGEST, dedupe_key="k")

    deliveries_dispatch()

    delivery = Delivery.objects.get()
    assert delivery.status == status
    assert delivery.last_error
    assert "wecom-secret-key-123" not in delivery.last_error


def test_unmocked_network_is_never_reached(wecom):
    group_digest_send(robot=wecom, digest=DIGEST, dedupe_key="k")
    deliveries_dispatch()
    assert Delivery.objects.get().status == DeliveryStatus.FAILED  # responses refused the call


def test_switched_off_robot_gets_nothing(http, wecom):
    wecom.active = False
    wecom.save()
    assert group_digest_send(robot=wecom, digest=DIGEST, dedupe_key="k") is False
    assert Delivery.objects.count() == 0


def test_digest_is_queued_once_per_key(wecom, dingtalk):
    assert group_digest_send(robot=wecom, digest=DIGEST, dedupe_key="missing:2026-11-24:1") is True
    assert group_digest_send(robot=wecom, digest=DIGEST, dedupe_key="missing:2026-11-24:1") is False
    assert group_digest_send(robot=dingtalk, digest=DIGEST, dedupe_key="missing:2026-11-24:1") is True
    assert Delivery.objects.count() == 2


# -- Nothing personal in a group -----------------------------------------------
def test_digest_from_a_missing_list_carries_counts_and_link_only(http, world, wecom):
    missing = world["A"].students  # names, phones, 学号, ID numbers, dorms
    digest = GroupDigest.from_rows(
        title="中心校区 晨检未报",
        rows=missing,
        label=lambda s: s.school_class.name,
        link="/reports/missing/?date=2026-11-24&slot=morning",
        total_label="未报合计",
    )
    call = http.post(WECOM_URL, json={"errcode": 0, "errmsg": "ok"})

    group_digest_send(robot=wecom, digest=digest, dedupe_key="k")
    deliveries_dispatch()

    assert digest.counts == {"未报合计": 6, "法学A2024-1班": 3, "法学A2024-2班": 3}
    stored = json.dumps(Delivery.objects.get().payload, ensure_ascii=False)
    posted = call.calls[0].request.body.decode()
    for text in (stored, posted):
        for student in missing:
            for personal in (student.name, student.phone, student.student_number, student.id_number):
                assert personal not in text


def test_group_channel_takes_only_a_digest(wecom):
    with pytest.raises(TypeError):
        group_digest_send(robot=wecom, digest={"title": "学生甲 发热 38.5℃"}, dedupe_key="k")


@pytest.mark.parametrize(
    "build",
    [
        lambda: GroupDigest(title="张三 13800001234 未报", counts={}),
        lambda: GroupDigest(title="未报", counts={"学号 202412345678": 1}),
        lambda: GroupDigest(title="未报\n张三 发热", counts={}),
        lambda: GroupDigest(title="未报", counts={"合计": "三人"}),
        lambda: GroupDigest(title="未报", counts={"合计": True}),
        lambda: GroupDigest(title="未报", counts={}, link="https://evil.example.com/"),
    ],
)
def test_digest_refuses_personal_looking_or_free_text(build):
    with pytest.raises(ValueError):
        build()


def test_tampered_payload_is_refused_at_send(http, wecom):
    call = http.post(WECOM_URL, json={"errcode": 0, "errmsg": "ok"})
    group_digest_send(robot=wecom, digest=DIGEST, dedupe_key="k")
    Delivery.objects.update(payload={"title": "学生 13800001234 发热", "counts": {}})

    deliveries_dispatch()

    assert call.call_count == 0
    assert Delivery.objects.get().status == DeliveryStatus.DEAD


def test_robots_for_a_college_include_campus_and_university_wide_ones(world):
    a, b = world["A"], world["B"]

    def robot(name, **unit):
        return GroupRobot.objects.create(name=name, kind=GroupRobotKind.WECOM, webhook_url=WECOM_URL, **unit)

    university = robot("全校")
    campus_a = robot("中心校区", campus=a.campus)
    college_a = robot("法学院", college=a.college)
    robot("威海校区", campus=b.campus)
    robot("法学院(威海)", college=b.college)
    GroupRobot.objects.create(name="停用", kind=GroupRobotKind.WECOM, webhook_url=WECOM_URL, active=False)

    assert list(group_robots_for(campus_id=a.campus.pk, college_id=a.college.pk)) == [university, campus_a, college_a]
    assert list(group_robots_for(campus_id=a.campus.pk)) == [university, campus_a]
    assert list(group_robots_for()) == [university]
