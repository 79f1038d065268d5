"""Content and paid-acquisition metrics from the `marketing` database."""

from __future__ import annotations

from metrics_pipeline.metrics.spec import DAY_WEEK_MONTH, Domain, MetricSpec, count, total

PLATFORM, CHANNEL = ("platform",), ("channel",)


def _posted(name: str, description: str, measure) -> MetricSpec:
    return MetricSpec(name, DAY_WEEK_MONTH, description, dims=PLATFORM, table="marketing_posts",
                      time="posted_at", measure=measure)


def _ads(name: str, description: str, measure, scale: float = 1.0, denominator=None) -> MetricSpec:
    return MetricSpec(name, DAY_WEEK_MONTH, description, dims=CHANNEL, table="ad_spend_daily", time="date",
                      measure=measure, denominator=denominator, scale=scale)


def _engaged(t):
    return t.c.likes + t.c.comments + t.c.shares


MARKETING = Domain(
    name="marketing",
    database="marketing",
    description="Organic content reach and paid acquisition: posts, engagement, ad spend and its efficiency.",
    specs=(
        MetricSpec("posts_created", DAY_WEEK_MONTH, "Posts created in the period.", dims=PLATFORM,
                   table="marketing_posts"),
        _posted("posts_published", "Posts published in the period.", count()),
        _posted("post_views", "Lifetime views (as of now) of the posts published in the period.", total("views")),
        _posted("post_likes", "Lifetime likes of the posts published in the period.", total("likes")),
        _posted("post_comments", "Lifetime comments of the posts published in the period.", total("comments")),
        _posted("post_shares", "Lifetime shares of the posts published in the period.", total("shares")),
        MetricSpec("engagement_rate", DAY_WEEK_MONTH,
                   "(Likes + comments + shares) / views of the posts published in the period.", dims=PLATFORM,
                   table="marketing_posts", time="posted_at", measure=total(_engaged), denominator=total("views")),
        _ads("ad_spend", "Paid acquisition spend (USD) on the period's dates.", total("spend_cents"), scale=100),
        _ads("ad_impressions", "Ad impressions on the period's dates.", total("impressions")),
        _ads("ad_clicks", "Ad clicks on the period's dates.", total("clicks")),
        _ads("ad_conversions", "Ad conversions on the period's dates.", total("conversions")),
        _ads("ctr", "Click-through rate: clicks / impressions.", total("clicks"), denominator=total("impressions")),
        _ads("cpc", "Cost per click (USD): spend / clicks.", total("spend_cents"), 100, total("clicks")),
        _ads("cpa", "Cost per acquisition (USD): spend / conversions.", total("spend_cents"), 100,
             total("conversions")),
    ),
)
