"""Made-up people, phone numbers and plausible responsible units for the demo.

Names and phone numbers are random combinations; any match with a real person is chance.
Unit names are the real kinds of bodies that own such assets in 焦作.
"""

from __future__ import annotations

import numpy as np

SURNAMES = tuple("王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段")
GIVEN = tuple("伟芳娜敏静丽强磊军洋勇艳杰涛明超秀英华慧建国志红平刚桂兰玉春海燕宏斌鹏飞亮霞晓林文博宇浩凯俊峰新利霞丹萍德光辉永")

CITY_BUREAU = "焦作市城市管理局"

# well_use → (主管部门, 权属单位, 养护单位)
MANHOLE_UNITS: dict[str, tuple[str, str | None, str]] = {
    "雨水": (CITY_BUREAU, CITY_BUREAU, "焦作市市政设施维护中心"),
    "污水": (CITY_BUREAU, CITY_BUREAU, "焦作市市政设施维护中心"),
    "雨水箅子": (CITY_BUREAU, CITY_BUREAU, "焦作市市政设施维护中心"),
    "合流": (CITY_BUREAU, CITY_BUREAU, "焦作市市政设施维护中心"),
    "给水": ("焦作市水务局", "焦作市供水有限公司", "焦作市供水有限公司"),
    "中水": ("焦作市水务局", "焦作市水务局", "焦作市供水有限公司"),
    "燃气": (CITY_BUREAU, "焦作市燃气有限公司", "焦作市燃气有限公司"),
    "热力": (CITY_BUREAU, "焦作市热力有限公司", "焦作市热力有限公司"),
    "电力": ("焦作市发展和改革委员会", "国网焦作供电公司", "国网焦作供电公司"),
    "路灯": (CITY_BUREAU, CITY_BUREAU, "焦作市路灯管理所"),
    "交通信号": ("焦作市公安局", "焦作市公安局交通警察支队", "焦作市公安局交通警察支队"),
    "通信": ("焦作市通信管理办公室", "中国联通焦作分公司", "中国联通焦作分公司"),
    "网络": ("焦作市通信管理办公室", "中国电信焦作分公司", "中国电信焦作分公司"),
    "有线电视": ("焦作市文化广电和旅游局", "河南有线电视网络集团焦作分公司", "河南有线电视网络集团焦作分公司"),
    "公安": ("焦作市公安局", "焦作市公安局", "焦作市公安局"),
    "消防": ("焦作市消防救援支队", "焦作市消防救援支队", "焦作市供水有限公司"),
    "无主": (CITY_BUREAU, None, "焦作市市政设施维护中心"),  # 属地兜底
}
TELECOM_OWNERS = ("中国联通焦作分公司", "中国电信焦作分公司", "中国移动焦作分公司")


def person_names(rng: np.random.Generator, n: int) -> list[str]:
    s = rng.integers(0, len(SURNAMES), n)
    g1 = rng.integers(0, len(GIVEN), n)
    g2 = rng.integers(0, len(GIVEN), n)
    two = rng.random(n) < 0.7
    return [SURNAMES[a] + GIVEN[b] + (GIVEN[c] if t else "") for a, b, c, t in zip(s, g1, g2, two, strict=True)]


def mobile_phones(rng: np.random.Generator, n: int) -> list[str]:
    prefixes = np.array(["137", "138", "139", "150", "151", "158", "176", "186", "189", "199"])
    pre = prefixes[rng.integers(0, len(prefixes), n)]
    rest = rng.integers(0, 10**8, n)
    return [f"{p}{r:08d}" for p, r in zip(pre, rest, strict=True)]


def office_phones(rng: np.random.Generator, n: int) -> list[str]:
    """焦作 landlines: area code 0391 and 7 digits."""
    return [f"0391-{r}" for r in rng.integers(2_000_000, 8_999_999, n)]
