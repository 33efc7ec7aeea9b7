"""The controlled list of environmental capability categories.

A member *offers* categories it can sell and *needs* categories it wants to buy.
"""

from __future__ import annotations

from enum import StrEnum


class Capability(StrEnum):
    ENERGY_AUDIT = "energy_audit"
    LED_LIGHTING = "led_lighting"
    HVAC = "hvac"
    INSULATION = "insulation"
    SOLAR = "solar"
    RECYCLING = "recycling"
    WASTE_MANAGEMENT = "waste_management"
    EMS_CONSULTING = "ems_consulting"
    EV_AND_LOGISTICS = "ev_and_logistics"
    WATER_SAVING = "water_saving"
    RENEWABLE_POWER = "renewable_power"
    GREEN_FINANCE = "green_finance"


CAPABILITY_LABELS: dict[Capability, tuple[str, str]] = {
    Capability.ENERGY_AUDIT: ("省エネ診断", "energy audit"),
    Capability.LED_LIGHTING: ("LED照明への更新", "LED retrofit"),
    Capability.HVAC: ("高効率空調", "high-efficiency HVAC"),
    Capability.INSULATION: ("断熱改修", "insulation"),
    Capability.SOLAR: ("太陽光発電", "solar power"),
    Capability.RECYCLING: ("リサイクル", "recycling"),
    Capability.WASTE_MANAGEMENT: ("廃棄物処理", "waste management"),
    Capability.EMS_CONSULTING: ("EMS導入支援", "EMS consulting"),
    Capability.EV_AND_LOGISTICS: ("EV・グリーン物流", "EVs and green logistics"),
    Capability.WATER_SAVING: ("節水", "water saving"),
    Capability.RENEWABLE_POWER: ("再エネ電力", "renewable electricity"),
    Capability.GREEN_FINANCE: ("グリーンファイナンス", "green finance"),
}

C = Capability

# ASSUMPTION, NOT DATA: what a firm of each EDINET industry (提出者業種) is taken to
# offer and to need, so that real filers can be matched before they state their own
# offers and needs. Members replace these by registering a profile of their own.
INDUSTRY_CAPABILITIES: dict[str, tuple[frozenset[C], frozenset[C]]] = {
    "建設業": (
        frozenset({C.INSULATION, C.SOLAR, C.HVAC, C.LED_LIGHTING}),
        frozenset({C.WASTE_MANAGEMENT, C.RECYCLING, C.EMS_CONSULTING}),
    ),
    "電気機器": (
        frozenset({C.LED_LIGHTING, C.HVAC, C.SOLAR}),
        frozenset({C.RECYCLING, C.ENERGY_AUDIT, C.RENEWABLE_POWER}),
    ),
    "機械": (
        frozenset({C.HVAC, C.WATER_SAVING}),
        frozenset({C.ENERGY_AUDIT, C.RECYCLING, C.RENEWABLE_POWER}),
    ),
    "サービス業": (
        frozenset({C.EMS_CONSULTING, C.ENERGY_AUDIT}),
        frozenset({C.LED_LIGHTING, C.HVAC, C.RENEWABLE_POWER}),
    ),
    "情報・通信業": (
        frozenset({C.ENERGY_AUDIT}),
        frozenset({C.HVAC, C.RENEWABLE_POWER, C.LED_LIGHTING, C.RECYCLING}),
    ),
    "電気・ガス業": (
        frozenset({C.RENEWABLE_POWER, C.SOLAR, C.ENERGY_AUDIT}),
        frozenset({C.EMS_CONSULTING}),
    ),
    "卸売業": (
        frozenset({C.LED_LIGHTING, C.RECYCLING}),
        frozenset({C.EV_AND_LOGISTICS, C.ENERGY_AUDIT, C.WASTE_MANAGEMENT}),
    ),
    "小売業": (
        frozenset(),
        frozenset({C.LED_LIGHTING, C.HVAC, C.WASTE_MANAGEMENT, C.RECYCLING}),
    ),
    "陸運業": (
        frozenset({C.EV_AND_LOGISTICS}),
        frozenset({C.ENERGY_AUDIT, C.RENEWABLE_POWER}),
    ),
    "倉庫・運輸関連": (
        frozenset({C.EV_AND_LOGISTICS}),
        frozenset({C.LED_LIGHTING, C.SOLAR, C.INSULATION}),
    ),
    "海運業": (
        frozenset({C.EV_AND_LOGISTICS}),
        frozenset({C.ENERGY_AUDIT, C.EMS_CONSULTING}),
    ),
    "空運業": (
        frozenset({C.EV_AND_LOGISTICS}),
        frozenset({C.ENERGY_AUDIT, C.EMS_CONSULTING}),
    ),
    "不動産業": (
        frozenset(),
        frozenset({C.INSULATION, C.SOLAR, C.LED_LIGHTING, C.HVAC, C.ENERGY_AUDIT}),
    ),
    "銀行業": (
        frozenset({C.GREEN_FINANCE}),
        frozenset({C.LED_LIGHTING, C.EMS_CONSULTING}),
    ),
    "その他金融業": (frozenset({C.GREEN_FINANCE}), frozenset({C.EMS_CONSULTING})),
    "保険業": (frozenset({C.GREEN_FINANCE}), frozenset({C.EMS_CONSULTING})),
    "証券、商品先物取引業": (
        frozenset({C.GREEN_FINANCE}),
        frozenset({C.EMS_CONSULTING}),
    ),
    "化学": (
        frozenset({C.RECYCLING, C.WATER_SAVING}),
        frozenset({C.ENERGY_AUDIT, C.WASTE_MANAGEMENT, C.RENEWABLE_POWER}),
    ),
    "ガラス・土石製品": (
        frozenset({C.INSULATION}),
        frozenset({C.ENERGY_AUDIT, C.WASTE_MANAGEMENT}),
    ),
    "金属製品": (
        frozenset({C.RECYCLING}),
        frozenset({C.ENERGY_AUDIT, C.HVAC, C.EMS_CONSULTING}),
    ),
    "鉄鋼": (
        frozenset({C.RECYCLING}),
        frozenset({C.ENERGY_AUDIT, C.RENEWABLE_POWER}),
    ),
    "非鉄金属": (
        frozenset({C.RECYCLING}),
        frozenset({C.ENERGY_AUDIT, C.RENEWABLE_POWER}),
    ),
    "パルプ・紙": (
        frozenset({C.RECYCLING}),
        frozenset({C.ENERGY_AUDIT, C.WATER_SAVING}),
    ),
    "石油・石炭製品": (
        frozenset({C.RENEWABLE_POWER}),
        frozenset({C.EMS_CONSULTING, C.ENERGY_AUDIT}),
    ),
    "精密機器": (
        frozenset({C.ENERGY_AUDIT}),
        frozenset({C.HVAC, C.RECYCLING}),
    ),
    "輸送用機器": (
        frozenset({C.EV_AND_LOGISTICS}),
        frozenset({C.SOLAR, C.ENERGY_AUDIT, C.RECYCLING}),
    ),
}

# ASSUMPTION, NOT DATA: what every other member (industry unknown or not listed) is
# taken to need; it offers nothing until it says so.
DEFAULT_NEEDS: frozenset[C] = frozenset(
    {C.ENERGY_AUDIT, C.LED_LIGHTING, C.EMS_CONSULTING}
)


def capabilities_for_industry(industry: str) -> tuple[frozenset[C], frozenset[C]]:
    """Return the assumed (offers, needs) of a firm in an EDINET industry."""
    return INDUSTRY_CAPABILITIES.get(industry.strip(), (frozenset(), DEFAULT_NEEDS))
