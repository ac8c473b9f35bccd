"""django-q2's admin, made safe for view-only staff.

django-q2 registers its "Resubmit selected tasks to queue" action without a permission:
anyone who may *view* successful or failed tasks could enqueue them again (a sync among
them) and delete failure rows. Here it needs the change permission of the task's model;
a host project does the same in one of its apps' admin.py (see the README).
"""

from django.contrib import admin
from django_q import admin as q_admin
from django_q.models import Failure, Success


@admin.action(description="Resubmit selected tasks to queue", permissions=["change"])
def resubmit_task(modeladmin, request, queryset):
    q_admin.resubmit_task(modeladmin, request, queryset)


class SuccessAdmin(q_admin.TaskAdmin):
    actions = [resubmit_task]


class FailureAdmin(q_admin.FailAdmin):
    actions = [resubmit_task]


for model, model_admin in ((Success, SuccessAdmin), (Failure, FailureAdmin)):
    admin.site.unregister(model)
    admin.site.register(model, model_admin)
