from django import template

from studio.billing.models import format_micros

register = template.Library()


@register.filter
def money(micros):
    """Micro-dollars as dollars: 58000 → $0.058."""
    return format_micros(micros)
