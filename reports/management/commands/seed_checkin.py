"""``manage.py seed_checkin --days N``: check-in slots, reminder ladders and N days of
reports with their nightly roll-ups for the demo university (run after seed_demo)."""

from django.core.management.base import BaseCommand, CommandError

from campuses.models import Campus
from reports.demo import checkin_history
from reports.models import DailyReport
from reports.rollup_models import RollupRun, RollupSnapshot, SignOff


class Command(BaseCommand):
    help = "为演示学校生成打卡时段、催报步骤和最近 N 天的晨午检记录及每日汇总"

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=30, help="days of history before today (default 30)")
        parser.add_argument("--seed", type=int, default=2026)
        parser.add_argument("--reset", action="store_true", help="delete existing reports and roll-ups first")

    def handle(self, *args, days: int, seed: int, reset: bool, **options):
        if not Campus.objects.exists():
            raise CommandError("没有校区：请先运行 seed_demo。")
        if reset:
            for model in (SignOff, RollupSnapshot, RollupRun, DailyReport):
                model.objects.all().delete()
        elif DailyReport.objects.exists():
            self.stdout.write("已有晨午检记录，跳过（--reset 可重新生成）。")
            return
        self.stdout.write(f"生成 {days} 天的晨午检记录…")
        result = checkin_history(days=days, seed=seed, log=self.stdout.write)
        self.stdout.write(
            self.style.SUCCESS(
                f"完成：{result['reports']:,} 条记录，{result['slots']} 个时段；"
                f"写入 {result['write_seconds']} 秒，汇总 {result['rollup_seconds']} 秒"
            )
        )
