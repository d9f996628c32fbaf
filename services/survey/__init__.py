"""Survey: NPS, CSAT and CES right after the interaction, validated and enriched."""
