from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CampusesConfig(AppConfig):
    name = "campuses"
    verbose_name = _("组织机构")
