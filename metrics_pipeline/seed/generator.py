"""Deterministic synthetic source data: a day-by-day simulation of a dating app business.

`generate()` yields, for every simulated UTC day, the rows that day produced in the contract tables
(SOURCES.md) as column-oriented numpy frames, `{column: array}`:

- text: numpy str or object array (None is NULL)
- ts: datetime64[us], naive UTC (NaT is NULL)
- date: datetime64[D]
- int: int64 (float64 with NaN for NULL in a nullable column)

A row is emitted with the day that caused it, even when it describes later events (a renewal, a
delayed delivery receipt). The data is a snapshot taken at `as_of`, the end of the last day: nothing
at or after it is recorded, except what a source knows in advance (a trial's end, the end of a
canceled subscription's paid period). The same arguments always give the same data: one PCG64
stream, consumed in a fixed order, and vectorised numpy draws (no per-row Python loops).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from metrics_pipeline.contract import PLATFORMS, TABLES

Frame = dict[str, np.ndarray]

# ---- time: int64 microseconds since the Unix epoch -----------------------------------------------
US = 1_000_000
MINUTE = 60 * US
HOUR = 60 * MINUTE
DAY = 24 * HOUR
NEVER = np.int64(2**62)  # an event that has not happened (by as_of) or never will; stored as NULL

# ---- seasonality and growth ------------------------------------------------------------------------
GROWTH_PER_DAY = 0.002  # compound daily growth of every volume
APP_WEEKDAY = (0.95, 0.92, 0.94, 0.98, 1.05, 1.13, 1.10)  # Monday..Sunday: consumers use it more at weekends
BUSINESS_WEEKDAY = (1.15, 1.12, 1.10, 1.08, 1.00, 0.55, 0.45)  # business messaging quiets down at weekends
AD_WEEKDAY = (0.95, 0.95, 0.97, 1.00, 1.05, 1.08, 1.04)
APP_HOURS = np.array([2, 1.2, .8, .6, .6, .9, 1.6, 2.6, 3.2, 3.4, 3.6, 3.9,
                      4.3, 4.1, 4.0, 4.1, 4.4, 4.9, 5.6, 6.4, 7.2, 7.4, 6.2, 3.9])
BUSINESS_HOURS = np.array([.3, .2, .2, .2, .3, .6, 1.5, 3.5, 6, 7.5, 8, 8,
                           7, 7.5, 7.8, 7.5, 7, 6, 4, 3, 2.2, 1.6, 1, .6])

# ---- app ---------------------------------------------------------------------------------------------
ACTORS_PER_DAY = 440  # people opening the app for the first time; ~60 % of them sign up
PLATFORM_P = (0.47, 0.41, 0.12)  # contract.PLATFORMS order: ios, android, web
PROVIDERS = ("appstore", "playstore", "stripe")  # the payment provider of each platform, same order
STRIPE_FEE = 0.03  # the stores take 15 % of subscriptions and 30 % of one-time purchases
COUNTRIES = ("US", "GB", "DE", "FR", "BR", "IN", "CA", "AU", "MX", "ES", "IT", "NL", "SE", "PL", "JP")
COUNTRY_P = (.34, .1, .08, .07, .08, .07, .05, .04, .04, .03, .03, .02, .02, .02, .01)
CHANNELS = ("organic", "apple_search_ads", "tiktok_ads", "meta_ads", "google_ads", "referral", "influencer")
CHANNEL_P = (.36, .14, .16, .15, .09, .06, .04)
LIFETIME_DAYS = 20  # mean days a user stays active before going dormant
EXTRA_SESSIONS_PER_DAY = 0.45  # an active user's sessions that day beyond the first (Poisson mean)
RELEASE_EVERY_DAYS = 14
SESSION_MEDIAN_SECONDS = 290
OPEN_SESSION_SHARE = 0.002  # sessions whose end is never reported (app killed)

PLANS = ("premium_monthly", "premium_annual", "vip_monthly", "vip_annual")  # plan ^ 1 flips the interval, ^ 2 the tier
PLAN_INTERVAL = np.array(["month", "year", "month", "year"], dtype=object)
PLAN_PRICE_CENTS = np.array([999, 7999, 1999, 14999])
PLAN_PERIOD_DAYS = np.array([30, 365, 30, 365])
PLAN_CHURN = np.array([0.13, 0.35, 0.10, 0.30])  # probability of churning at each renewal
FIRST_PLAN_P = (0.5, 0.2, 0.2, 0.1)
SUBSCRIPTION_STATUS = ("trialing", "active", "past_due", "canceled")
TRIAL_DAYS = 7
TRIAL_SHARE, TRIAL_CONVERSION = 0.45, 0.55
PLAN_CHANGE_SHARE = 0.18  # subscriptions that end in an upgrade/downgrade rather than churn
REACTIVATION_SHARE = 0.22
FAILED_CHARGE_SHARE = 0.06  # first charge attempts that fail; retried 1-4 days later
PAYMENT_STATUS = ("succeeded", "failed", "refunded")
PURCHASE_PRICES_CENTS = np.array([299, 499, 999, 1999])  # one-time boosts and super-like packs

PURCHASE_SHARE = 0.004  # sessions with a one-time purchase
AI_REQUESTS_PER_SESSION = 0.1
AI_MODELS = ("gpt-4o-mini", "claude-3-5-haiku", "gpt-4o", "llama-3.1-70b")
AI_MODEL_P = (.5, .28, .15, .07)
AI_PRICE_MICROS = np.array([[0.15, 0.6], [0.8, 4.0], [2.5, 10.0], [0.6, 0.6]])  # per (input, output) token
AI_MS_PER_TOKEN = np.array([8, 10, 18, 12])
AI_FEATURES = ("icebreaker", "profile_review", "chat_coach", "photo_ranking")
AI_FEATURE_P = (.4, .2, .3, .1)
AI_STATUS = ("completed", "failed", "timeout")
AI_STATUS_P = (.94, .04, .02)
AI_TIMEOUT_MS = 30_000

# ---- interactions ------------------------------------------------------------------------------------
SWIPES_PER_SESSION = 0.7
SWIPE_ACTIONS = ("like", "pass", "superlike")
SWIPE_ACTION_P = (.42, .53, .05)
MATCH_P = np.array([.10, 0, .30])  # chance that a swipe of each action is mutual
VIDEO_CALL_SHARE = 0.15
FUNNEL_STEPS = ("app_open", "registration_start", "registration_complete", "first_session",
                "first_match", "first_message", "subscription_view", "subscription_purchase")
COLD_START_SHARE = 0.6  # sessions that begin with an app_open event
EVENTS_PER_SESSION = 0.15  # other events (Poisson mean)
OTHER_EVENTS = ("screen_view", "profile_view", "message_sent", "notification_open", "settings_open",
                "photo_upload")
OTHER_EVENT_P = (.4, .25, .18, .09, .05, .03)
EVENT_NAMES = FUNNEL_STEPS + OTHER_EVENTS
EVENT_PROPERTIES = {  # JSON payload options per event name (None: no payload)
    "app_open": (None, '{"source": "icon"}', '{"source": "push"}', '{"source": "deeplink"}'),
    "registration_start": ('{"method": "phone"}', '{"method": "apple"}', '{"method": "google"}'),
    "subscription_view": ('{"placement": "paywall"}', '{"placement": "likes_you"}',
                          '{"placement": "settings"}'),
    "screen_view": ('{"screen": "discover"}', '{"screen": "matches"}', '{"screen": "chat"}',
                    '{"screen": "profile"}'),
    "profile_view": ('{"source": "discover"}', '{"source": "likes_you"}'),
    "notification_open": ('{"kind": "match"}', '{"kind": "message"}', '{"kind": "promo"}', None),
}

# ---- messaging -----------------------------------------------------------------------------------
ACCOUNTS = ("acct_acme", "acct_bloom", "acct_cobalt", "acct_dune", "acct_ember")
ACCOUNT_P = (.38, .26, .16, .12, .08)
CONTACTS_PER_DAY = 140
CONVERSATIONS_PER_DAY = 100  # conversations that contacts start
CAMPAIGNS_PER_DAY = 2.5
CAMPAIGN_MEDIAN_RECIPIENTS = 80
CAMPAIGN_THEMES = ("Welcome series", "Weekend offer", "Product update", "Win-back", "Event invite",
                   "Feedback survey")
CAMPAIGN_STATUS = ("draft", "scheduled", "active", "completed", "failed")
MESSAGE_STATUS = ("queued", "sent", "delivered", "read", "failed")

# ---- marketing -----------------------------------------------------------------------------------
POSTS_PER_DAY = 6
POST_PLATFORMS = ("tiktok", "instagram", "youtube_shorts")
POST_PLATFORM_P = (.45, .35, .2)
POST_MEDIAN_VIEWS = np.array([5000, 2000, 3000])
POST_CATEGORIES = ("dating_tips", "success_story", "product", "meme", "behind_the_scenes")
POST_STATUS = ("draft", "ready", "approved", "scheduled", "posted", "failed")
AD_CHANNELS = ("apple_search_ads", "tiktok_ads", "meta_ads", "google_ads")
AD_CHANNEL_CPM_CENTS = np.array([800, 600, 1000, 500])
AD_CHANNEL_CTR = np.array([.06, .012, .011, .02])
AD_CHANNEL_CVR = np.array([.35, .08, .10, .06])
AD_CAMPAIGNS = (  # (channel, campaign_id, daily budget in dollars, runs in flights rather than always on)
    (0, "asa_brand", 150, False), (0, "asa_generic", 250, False), (0, "asa_competitor", 120, True),
    (1, "tt_ugc_video", 300, False), (1, "tt_spark_ads", 200, False), (1, "tt_creator_flight", 250, True),
    (2, "meta_advantage_plus", 400, False), (2, "meta_retargeting", 120, False),
    (2, "meta_reels_flight", 220, True),
    (3, "gads_uac", 350, False), (3, "gads_search_brand", 80, False), (3, "gads_youtube_flight", 200, True),
)
FLIGHT_CYCLE_DAYS, FLIGHT_DAYS = 42, 21

ID_DIGITS = 9
LATE_UPDATE_SHARE = 0.03  # rows written again (or first loaded) days after they happened


def generate(days: int, end: dt.date, scale: float = 1.0, seed: int = 42
             ) -> Iterator[tuple[dt.date, list[tuple[str, Frame]]]]:
    """Simulate `days` days ending on `end` (inclusive); yield (day, [(table, frame), ...]) per day."""
    sim = _Simulation(days, end, scale, seed)
    for d in range(days):
        yield end - dt.timedelta(days=days - 1 - d), sim.day(d)


# ---- small vectorised helpers --------------------------------------------------------------------
def _ids(prefix: str, numbers: np.ndarray) -> np.ndarray:
    """Text ids like 'u_000000042'; -1 gives NULL."""
    assert numbers.max(initial=0) < 10**ID_DIGITS, "id space exhausted"
    chars = np.empty((len(numbers), len(prefix) + 1 + ID_DIGITS), np.uint32)  # UCS-4 code points
    chars[:, :len(prefix) + 1] = [ord(c) for c in prefix + "_"]
    rest = np.maximum(numbers, 0)
    for position in range(chars.shape[1] - 1, len(prefix), -1):
        chars[:, position] = ord("0") + rest % 10
        rest = rest // 10
    text = chars.view(f"U{chars.shape[1]}").ravel()
    if (numbers >= 0).all():
        return text
    text = text.astype(object)
    text[numbers < 0] = None
    return text


def _labels(values: tuple, codes: np.ndarray) -> np.ndarray:
    """Enum codes to text; code -1 gives NULL."""
    return np.array(values + (None,), dtype=object)[codes]


def _ranks(counts: np.ndarray) -> np.ndarray:
    """For np.repeat(x, counts): each repeated row's position within its group (0, 1, ...)."""
    return np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)


def _timestamps(us: np.ndarray) -> np.ndarray:
    """A ts column from microseconds (NEVER is NULL). Values in odd seconds lose their fraction, so
    sources hold whole-second and fractional timestamps side by side, as real ones do."""
    whole_seconds = np.where(us // US % 2 == 1, us - us % US, us)
    return np.where(us >= NEVER, np.iinfo(np.int64).min, whole_seconds).view("datetime64[us]")


def _days_since_epoch(date: dt.date) -> int:
    return (date - dt.date(1970, 1, 1)).days


class _Growing:
    """An append-only int64 array (amortised O(1) appends)."""

    def __init__(self):
        self._data, self._size = np.empty(1024, np.int64), 0

    def extend(self, values: np.ndarray) -> None:
        size = self._size + len(values)
        if size > len(self._data):
            self._data = np.concatenate([self._data[:self._size], np.empty(size, np.int64)])
        self._data[self._size:size] = values
        self._size = size

    @property
    def values(self) -> np.ndarray:
        return self._data[:self._size]


class _Pool:
    """Column arrays of the users still active (dormant users leave the pool)."""

    def __init__(self, **columns: np.ndarray):
        self.columns = columns

    def __len__(self) -> int:
        return len(self.columns["user"])

    def __getattr__(self, name: str) -> np.ndarray:
        try:
            return self.__dict__["columns"][name]
        except KeyError:
            raise AttributeError(name) from None

    def add(self, **columns: np.ndarray) -> np.ndarray:
        """Append rows; return their positions in the pool."""
        first = len(self)
        self.columns = {k: np.concatenate([v, columns[k]]) for k, v in self.columns.items()}
        return np.arange(first, len(self))

    def keep(self, mask: np.ndarray) -> None:
        self.columns = {k: v[mask] for k, v in self.columns.items()}


@dataclass
class _Sessions:
    """A batch of sessions: the context of the in-app activity generated inside them."""

    ids: np.ndarray
    rows: np.ndarray  # the user's position in the pool
    start: np.ndarray
    until: np.ndarray  # the session's end, or as_of while it is open
    platform: np.ndarray
    version: np.ndarray


class _Simulation:
    """The business, one day at a time: acquisition and onboarding, sessions and in-app activity,
    billing, business messaging and marketing. State carried across days: the active user pool,
    the messaging contacts and the id counters."""

    def __init__(self, days: int, end: dt.date, scale: float, seed: int):
        self.rng = np.random.Generator(np.random.PCG64(seed))
        self.scale = scale
        self.first_day = _days_since_epoch(end) - days + 1
        self.start = self.first_day * DAY
        self.as_of = (self.first_day + days) * DAY
        self.next_id: Counter[str] = Counter()
        self.users = _Pool(user=np.empty(0, np.int64), actor=np.empty(0, np.int64),
                           created=np.empty(0, np.int64), platform=np.empty(0, np.int64),
                           country=np.empty(0, np.int64), engagement=np.empty(0),
                           dormant=np.empty(0, np.int64))
        self.contact_account = _Growing()
        self.account_contacts = [_Growing() for _ in ACCOUNTS]
        self.first_release = self.start - 10 * RELEASE_EVERY_DAYS * DAY
        releases = days // RELEASE_EVERY_DAYS + 12
        self.versions = np.array([f"{5 + r // 10}.{r % 10}.0" for r in range(releases)], dtype=object)
        self.flight_phase = self.rng.integers(0, FLIGHT_CYCLE_DAYS, len(AD_CAMPAIGNS))
        event_options = [EVENT_PROPERTIES.get(name, (None,)) for name in EVENT_NAMES]
        self.property_options = np.array([p for opts in event_options for p in opts], dtype=object)
        self.property_counts = np.array([len(opts) for opts in event_options])
        self.property_offsets = np.cumsum(self.property_counts) - self.property_counts

    def day(self, d: int) -> list[tuple[str, Frame]]:
        """Every row that day d (0-based) produces."""
        day = self.start + d * DAY
        frames = [*self._acquisition(d, day), *self._returning_sessions(d, day),
                  *self._messaging(d, day), *self._marketing(d, day)]
        self.users.keep(self.users.dormant > day + DAY)
        return frames

    # ---- random building blocks --------------------------------------------------------------------
    def _weekday(self, d: int, factors: tuple) -> float:
        """The factor of day d's weekday (factors from Monday; 1970-01-01 was a Thursday)."""
        return factors[(self.first_day + d + 3) % 7]

    def _seasonal(self, d: int, weekday: tuple) -> float:
        """Scale x compounding growth x weekday seasonality."""
        return self.scale * (1 + GROWTH_PER_DAY) ** d * self._weekday(d, weekday)

    def _volume(self, base: float, d: int, weekday: tuple) -> int:
        """A day's count: base x seasonality with Poisson noise."""
        return int(self.rng.poisson(base * self._seasonal(d, weekday)))

    def _take(self, kind: str, n: int) -> np.ndarray:
        """The next n sequential numbers of an id series."""
        first = self.next_id[kind]
        self.next_id[kind] += n
        return np.arange(first, first + n)

    def _chance(self, p, n: int) -> np.ndarray:
        return self.rng.random(n) < p

    def _pick(self, p, n: int) -> np.ndarray:
        return self.rng.choice(len(p), n, p=np.asarray(p) / np.sum(p))

    def _pick_or_null(self, p, null_share: float, n: int) -> np.ndarray:
        return np.where(self._chance(null_share, n), -1, self._pick(p, n))

    def _time_of_day(self, n: int, hour_weights: np.ndarray) -> np.ndarray:
        return self._pick(hour_weights, n) * HOUR + self.rng.integers(0, HOUR, n)

    def _uniform(self, low, high, n: int) -> np.ndarray:
        return self.rng.integers(low, high, n)

    def _exponential(self, mean: float, n: int, low: int = US) -> np.ndarray:
        return low + self.rng.exponential(mean, n).astype(np.int64)

    def _lognormal(self, median: float, sigma: float, n: int, low: int = US, high: int = 30 * DAY):
        return np.clip(median * np.exp(sigma * self.rng.standard_normal(n)), low, high).astype(np.int64)

    def _by_now(self, us: np.ndarray) -> np.ndarray:
        """Events at or after as_of have not happened yet."""
        return np.where(us < self.as_of, us, NEVER)

    def _updated_at(self, *timestamps: np.ndarray) -> np.ndarray:
        """When the row was last written: shortly after its latest recorded change, or days later for
        a few percent of rows (late-arriving loads and corrections), never after the window's end."""
        latest = np.max([np.where(t < self.as_of, t, 0) for t in timestamps], axis=0)
        n = len(latest)
        delay = self._lognormal(20 * US, 1.5, n, US, HOUR)
        delay += np.where(self._chance(LATE_UPDATE_SHARE, n), self._uniform(2 * DAY, 12 * DAY, n), 0)
        return np.minimum(latest + delay, self.as_of - 1)

    def _version_at(self, us: np.ndarray) -> np.ndarray:
        """The app version released last before each instant."""
        release = (us - self.first_release) // (RELEASE_EVERY_DAYS * DAY)
        return np.clip(release, 0, len(self.versions) - 1)

    def _emit(self, table: str, **columns) -> tuple[str, Frame]:
        """A frame in the contract's column order; ts columns converted, scalars broadcast."""
        spec = TABLES[table]
        assert set(columns) == set(spec.column_names), f"{table}: {set(columns) ^ set(spec.column_names)}"
        n = len(next(v for v in columns.values() if isinstance(v, np.ndarray)))
        frame = {}
        for col in spec.columns:
            value = columns[col.name]
            if not isinstance(value, np.ndarray):
                value = np.full(n, value, dtype=object)
            frame[col.name] = _timestamps(value) if col.kind == "ts" else value
        return table, frame

    # ---- acquisition and onboarding -------------------------------------------------------------------
    def _acquisition(self, d: int, day: int) -> list[tuple[str, Frame]]:
        """New people open the app; some start and some complete registration (becoming users).
        Some open it several times. Anonymous events carry the actor id and no user id."""
        n = self._volume(ACTORS_PER_DAY, d, APP_WEEKDAY)
        actor = self._take("actor", n)
        platform, country = self._pick(PLATFORM_P, n), self._pick_or_null(COUNTRY_P, 0.04, n)
        first_open = day + self._time_of_day(n, APP_HOURS)
        reg_start = np.where(self._chance(0.75, n), first_open + self._uniform(10 * US, 10 * MINUTE, n), NEVER)
        reg_done = np.where(self._chance(0.8, n), reg_start + self._uniform(30 * US, 15 * MINUTE, n), NEVER)
        reg_done = self._by_now(reg_done)

        reopens = np.where(self._chance(0.2, n), self.rng.integers(1, 4, n), 0)
        again = np.repeat(np.arange(n), reopens)
        events = [(np.arange(n), first_open, "app_open"),
                  (again, first_open[again] + self._exponential(10 * HOUR, len(again), MINUTE), "app_open"),
                  (np.arange(n), reg_start, "registration_start"),
                  (np.arange(n), reg_done, "registration_complete")]
        signed_up = np.flatnonzero(reg_done < NEVER)
        users = self._take("user", len(signed_up))
        user_of_actor = np.full(n, -1)
        user_of_actor[signed_up] = users
        return [self._events_for_actors(actor, user_of_actor, reg_done, platform, country, events),
                *self._signups(users, actor[signed_up], reg_done[signed_up], platform[signed_up],
                               country[signed_up])]

    def _events_for_actors(self, actor, user_of_actor, signed_up_at, platform, country, events):
        """Events of people outside a session: user_id is set once they have signed up."""
        rows = np.concatenate([r for r, _, _ in events])
        time = np.concatenate([t for _, t, _ in events])
        name = np.concatenate([np.full(len(r), EVENT_NAMES.index(e)) for r, _, e in events])
        keep = time < self.as_of
        rows, time, name = rows[keep], time[keep], name[keep]
        user = np.where(time >= signed_up_at[rows], user_of_actor[rows], -1)
        return self._events(actor[rows], user, np.full(len(rows), -1), name, time, platform[rows],
                            self._version_at(time), country[rows])

    def _signups(self, users, actors, created, platform, country) -> list[tuple[str, Frame]]:
        """Users rows, the new users' first session, and their onboarding funnel (which ends in a
        first subscription for some)."""
        n = len(users)
        engagement = self.rng.beta(2, 3, n)
        dormant = created + (self.rng.exponential(LIFETIME_DAYS, n) * DAY).astype(np.int64)
        deleted = np.where(self._chance(0.15, n), self._by_now(dormant + self._exponential(15 * DAY, n)), NEVER)
        rows = self.users.add(user=users, actor=actors, created=created, platform=platform,
                              country=country, engagement=engagement, dormant=dormant)
        user_frame = self._emit(
            "users", id=_ids("u", users), email=self._emails(users), created_at=created,
            country=_labels(COUNTRIES, country), platform=_labels(PLATFORMS, platform),
            acquisition_channel=_labels(CHANNELS, self._pick_or_null(CHANNEL_P, 0.1, n)),
            deleted_at=deleted, updated_at=self._updated_at(created, deleted))
        first_session = created + self._uniform(2 * US, MINUTE, n)
        started = first_session < self.as_of
        sessions, session_frames = self._sessions(rows[started], first_session[started])
        funnel, purchased_at = self._onboarding(sessions)
        buyers = purchased_at < self.as_of
        return [user_frame, *session_frames, funnel,
                *self._subscriptions(sessions.rows[buyers], purchased_at[buyers])]

    def _emails(self, users: np.ndarray) -> np.ndarray:
        """Fake but unique addresses (the PII column)."""
        domains = np.array(["gmail.com", "icloud.com", "outlook.com", "yahoo.com", "proton.me"])
        return np.char.add(np.char.add("user", users.astype(str)),
                           np.char.add("@", domains[self._pick((.45, .25, .15, .1, .05), len(users))]))

    def _onboarding(self, sessions: _Sessions):
        """Post-signup funnel steps, each reached by a share of the previous step's users, later in
        time; some users view the paywall without matching first. Returns the events frame and the
        purchase time per user (NEVER when none)."""
        rows, first_session = sessions.rows, sessions.start
        n = len(rows)
        match = np.where(self._chance(0.6, n), first_session + self._exponential(18 * HOUR, n), NEVER)
        message = np.where((match < NEVER) & self._chance(0.65, n), match + self._exponential(8 * HOUR, n), NEVER)
        view = np.where((message < NEVER) & self._chance(0.55, n), message + self._exponential(DAY, n),
                        np.where(self._chance(0.12, n),
                                 self.users.created[rows] + self._exponential(2 * DAY, n), NEVER))
        purchase = np.where((view < NEVER) & self._chance(0.3, n), view + self._uniform(5 * US, 10 * MINUTE, n),
                            NEVER)
        steps = (first_session, match, message, view, purchase)
        time = np.concatenate(steps)
        name = np.repeat([EVENT_NAMES.index(s) for s in FUNNEL_STEPS[3:]], n)
        who = np.tile(rows, len(steps))
        session = np.concatenate([sessions.ids, np.full(n * (len(steps) - 1), -1)])
        keep = time < self.as_of
        who, time = who[keep], time[keep]
        frame = self._events(self.users.actor[who], self.users.user[who], session[keep], name[keep], time,
                             self.users.platform[who], self._version_at(time), self.users.country[who])
        return frame, self._by_now(purchase)

    # ---- billing ----------------------------------------------------------------------------------------
    def _subscriptions(self, rows, first_start) -> list[tuple[str, Frame]]:
        """Each buyer's chain of subscriptions: an optional trial, renewals until churn or a plan
        change (the old row ends at the instant the new one starts), and comebacks after churn."""
        users, platform = self.users.user[rows], self.users.platform[rows]
        plan, trial = self._pick(FIRST_PLAN_P, len(users)), self._chance(TRIAL_SHARE, len(users))
        start, parts = first_start, []
        while len(users):
            ep = self._subscription_episode(plan, start, trial)
            parts.append(dict(ep, user=users, platform=platform))
            go = ep["next_start"] < self.as_of
            users, platform, start, plan = users[go], platform[go], ep["next_start"][go], ep["next_plan"][go]
            trial = np.zeros(len(users), bool)
        if not parts:
            return []
        sub = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        ids = self._take("subscription", len(sub["user"]))
        payments, past_due = self._renewals(ids, sub)
        status = np.select([sub["ended"] <= self.as_of, sub["trial"] & (sub["paid_start"] > self.as_of), past_due],
                           [3, 0, 2], 1)
        frame = self._emit(
            "subscriptions", id=_ids("sub", ids), user_id=_ids("u", sub["user"]),
            plan=_labels(PLANS, sub["plan"]), billing_interval=PLAN_INTERVAL[sub["plan"]],
            price_cents=PLAN_PRICE_CENTS[sub["plan"]], currency="USD", status=_labels(SUBSCRIPTION_STATUS, status),
            started_at=sub["start"], trial_ends_at=np.where(sub["trial"], sub["paid_start"], NEVER),
            canceled_at=sub["canceled"], ended_at=sub["ended"],
            updated_at=self._updated_at(sub["start"], sub["paid_start"], sub["canceled"], sub["ended"]))
        return [frame, payments]

    def _subscription_episode(self, plan, start, trial) -> dict[str, np.ndarray]:
        """One subscription row's life. Trials convert or are canceled (access ends at the trial's end
        or at once); paid plans renew for a geometric number of periods, then churn (canceled during
        the last period, ended at its end) or change plan mid-period. Churned users may come back."""
        n = len(plan)
        period = PLAN_PERIOD_DAYS[plan] * DAY
        paid_start = np.where(trial, start + TRIAL_DAYS * DAY, start)
        converts = ~trial | self._chance(TRIAL_CONVERSION, n)
        last_period = paid_start + (self.rng.geometric(PLAN_CHURN[plan]) - 1) * period
        changes = converts & self._chance(PLAN_CHANGE_SHARE, n)
        trial_cancel = start + self._uniform(HOUR, TRIAL_DAYS * DAY - HOUR, n)
        paid_cancel = last_period + (self.rng.uniform(0.05, 0.95, n) * period).astype(np.int64)
        canceled = np.where(converts, paid_cancel, trial_cancel)
        ended = np.select([~converts, changes],
                          [np.where(self._chance(0.7, n), paid_start, trial_cancel), paid_cancel],
                          last_period + period)
        comeback = ~changes & self._chance(REACTIVATION_SHARE, n)
        next_start = np.select([changes, comeback], [ended, ended + self._exponential(40 * DAY, n, DAY)], NEVER)
        unknown = canceled >= self.as_of  # the user has not canceled (yet): no end, no successor
        return dict(plan=plan, start=start, trial=trial, paid_start=paid_start,
                    canceled=np.where(unknown, NEVER, canceled), ended=np.where(unknown, NEVER, ended),
                    next_start=np.where(unknown, NEVER, next_start),
                    next_plan=np.where(changes, plan ^ self.rng.integers(1, 3, n), self._pick(FIRST_PLAN_P, n)))

    def _renewals(self, ids, sub) -> tuple[tuple[str, Frame], np.ndarray]:
        """A charge at the start of every paid period until the subscription ends; some first
        attempts fail and are retried days later. A subscription whose retry is still pending is
        past due."""
        period = PLAN_PERIOD_DAYS[sub["plan"]] * DAY
        limit = np.minimum(sub["ended"], self.as_of)
        bills = np.where(sub["paid_start"] < limit, -((sub["paid_start"] - limit) // period), 0)
        row = np.repeat(np.arange(len(ids)), bills)
        due = sub["paid_start"][row] + _ranks(bills) * period[row] + self._uniform(US, 2 * MINUTE, len(row))
        failed = self._chance(FAILED_CHARGE_SHARE, len(row)) & (due < limit[row])
        retry = due + self._uniform(DAY, 4 * DAY, len(row))
        succeeded_at = np.where(failed, retry, due)
        past_due = np.zeros(len(ids), bool)
        past_due[row[failed & (retry >= self.as_of)]] = True
        ok = succeeded_at < limit[row]
        rows = np.concatenate([row[failed], row[ok]])
        created = np.concatenate([due[failed], succeeded_at[ok]])
        outcome = np.concatenate([np.ones(failed.sum(), bool), np.zeros(ok.sum(), bool)])
        plan = sub["plan"][rows]
        frame = self._payments(sub["user"][rows], ids[rows], "subscription", sub["platform"][rows],
                               PLAN_PRICE_CENTS[plan], created, outcome,
                               store_fee=0.15, refund_share=np.where(PLAN_PERIOD_DAYS[plan] > 30, .06, .02))
        return frame, past_due

    def _payments(self, users, subscriptions, kind, platform, amount, created, failed, store_fee,
                  refund_share) -> tuple[str, Frame]:
        """Charge attempts: the platform's store (or Stripe on web) takes its fee from successful
        charges; some are refunded on a later day."""
        n = len(users)
        fee = np.round(amount * np.where(platform == 2, STRIPE_FEE, store_fee))
        refunded_at = (created // DAY + self.rng.integers(1, 15, n)) * DAY + self._time_of_day(n, APP_HOURS)
        refunded_at = np.where(~failed & self._chance(refund_share, n), self._by_now(refunded_at), NEVER)
        status = np.select([failed, refunded_at < NEVER], [1, 2], 0)
        return self._emit(
            "payments", id=_ids("pay", self._take("payment", n)), user_id=_ids("u", users),
            subscription_id=_ids("sub", subscriptions), kind=kind, provider=_labels(PROVIDERS, platform),
            amount_cents=amount, fee_cents=np.where(failed, 0, fee).astype(np.int64), currency="USD",
            status=_labels(PAYMENT_STATUS, status), created_at=created, refunded_at=refunded_at,
            updated_at=self._updated_at(created, refunded_at))

    # ---- sessions and in-app activity -------------------------------------------------------------
    def _returning_sessions(self, d: int, day: int) -> list[tuple[str, Frame]]:
        """Users who signed up before today come back with a probability that falls with account age
        and rises with their engagement, at weekends more; some open several sessions a day."""
        pool = self.users
        age = (day - pool.created) / DAY
        p = pool.engagement * (0.3 + 0.7 * np.exp(-age / 4)) * self._weekday(d, APP_WEEKDAY)
        active = np.flatnonzero((pool.created < day) & (self.rng.random(len(pool)) < p))
        rows = np.repeat(active, 1 + self.rng.poisson(EXTRA_SESSIONS_PER_DAY, len(active)))
        return self._sessions(rows, day + self._time_of_day(len(rows), APP_HOURS))[1]

    def _sessions(self, rows, start) -> tuple[_Sessions, list[tuple[str, Frame]]]:
        """Sessions of pool users starting at `start`, and everything done in them. Some cross
        midnight; those still running at as_of (or never closed) have no ended_at."""
        n = len(rows)
        ids = self._take("session", n)
        duration = self._lognormal(SESSION_MEDIAN_SECONDS * US, 1.0, n, 5 * US, 4 * HOUR)
        ended = self._by_now(np.where(self._chance(OPEN_SESSION_SHARE, n), NEVER, start + duration))
        platform = np.where(self._chance(0.05, n), self.rng.integers(0, 3, n), self.users.platform[rows])
        version = self._version_at(start - self._exponential(4 * DAY, n))
        screens = 1 + self.rng.poisson(duration / MINUTE * 1.2)
        frame = self._emit(
            "user_sessions", id=_ids("s", ids), user_id=_ids("u", self.users.user[rows]), started_at=start,
            ended_at=ended, platform=_labels(PLATFORMS, platform), app_version=self.versions[version],
            screens_viewed=screens, actions_taken=self.rng.poisson(screens * 1.5),
            updated_at=self._updated_at(start, ended))
        sessions = _Sessions(ids, rows, start, np.minimum(start + duration, self.as_of - 1), platform, version)
        return sessions, [frame, *self._session_events(sessions), *self._swipes(sessions),
                          self._ai_requests(sessions), self._purchases(sessions)]

    def _in_sessions(self, sessions: _Sessions, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`counts` things per session: their session index and a time within the session."""
        s = np.repeat(np.arange(len(counts)), counts)
        span = sessions.until[s] - sessions.start[s]
        return s, sessions.start[s] + (self.rng.random(len(s)) * span).astype(np.int64)

    def _session_events(self, sessions: _Sessions) -> list[tuple[str, Frame]]:
        """An app_open at the start of each cold-started session, plus a few other product events
        inside sessions."""
        cold = np.flatnonzero(self._chance(COLD_START_SHARE, len(sessions.ids)))
        s, time = self._in_sessions(sessions, self.rng.poisson(EVENTS_PER_SESSION, len(sessions.ids)))
        name = np.concatenate([np.zeros(len(cold), np.int64), len(FUNNEL_STEPS) + self._pick(OTHER_EVENT_P, len(s))])
        s, time = np.concatenate([cold, s]), np.concatenate([sessions.start[cold], time])
        rows = sessions.rows[s]
        return [self._events(self.users.actor[rows], self.users.user[rows], sessions.ids[s], name, time,
                             sessions.platform[s], sessions.version[s], self.users.country[rows])]

    def _events(self, actor, user, session, name, time, platform, version, country) -> tuple[str, Frame]:
        """Events rows; the JSON properties depend on the event name."""
        n = len(actor)
        option = self.property_offsets[name] + (self.rng.random(n) * self.property_counts[name]).astype(np.int64)
        return self._emit(
            "events", id=_ids("e", self._take("event", n)), actor_id=_ids("a", actor), user_id=_ids("u", user),
            session_id=_ids("s", session), event_name=_labels(EVENT_NAMES, name), event_time=time,
            platform=_labels(PLATFORMS, platform), app_version=self.versions[version],
            country=_labels(COUNTRIES, country), properties=self.property_options[option],
            updated_at=self._updated_at(time))

    def _swipes(self, sessions: _Sessions) -> list[tuple[str, Frame]]:
        """Swipes on other active users; some likes are mutual (a match), and some matches video call
        later. A call's duration is unknown while it is live or not yet reported."""
        s, time = self._in_sessions(sessions, self.rng.poisson(SWIPES_PER_SESSION, len(sessions.ids)))
        n, pool = len(s), max(len(self.users), 2)
        swiper = sessions.rows[s]
        target = (swiper + 1 + self.rng.integers(0, pool - 1, n)) % pool
        action = self._pick(SWIPE_ACTION_P, n)
        swipe_frame = self._emit(
            "swipes", id=_ids("sw", self._take("swipe", n)), user_id=_ids("u", self.users.user[swiper]),
            target_user_id=_ids("u", self.users.user[target]), action=_labels(SWIPE_ACTIONS, action),
            created_at=time, updated_at=self._updated_at(time))

        mutual = np.flatnonzero(self._chance(MATCH_P[action], n))
        matched_at = time[mutual] + self._uniform(US, 30 * US, len(mutual))
        mutual, matched_at = mutual[matched_at < self.as_of], matched_at[matched_at < self.as_of]
        matches = self._take("match", len(mutual))
        match_frame = self._emit(
            "matches", id=_ids("m", matches), user_a_id=_ids("u", self.users.user[swiper[mutual]]),
            user_b_id=_ids("u", self.users.user[target[mutual]]), created_at=matched_at,
            updated_at=self._updated_at(matched_at))

        calling = self._chance(VIDEO_CALL_SHARE, len(matches))
        started = matched_at[calling] + self._exponential(1.5 * DAY, calling.sum(), MINUTE)
        call_match, started = matches[calling][started < self.as_of], started[started < self.as_of]
        k = len(started)
        duration = self._lognormal(400 * US, 1.0, k, 5 * US, 3 * HOUR)
        reported = self._by_now(started + duration + self._exponential(HOUR, k))
        call_frame = self._emit(
            "video_calls", id=_ids("vc", self._take("video_call", k)), match_id=_ids("m", call_match),
            started_at=started, duration_seconds=np.where(reported < NEVER, duration // US, np.nan),
            updated_at=self._updated_at(started, reported))
        return [swipe_frame, match_frame, call_frame]

    def _ai_requests(self, sessions: _Sessions) -> tuple[str, Frame]:
        """AI feature calls: tokens, cost by model price, latency by output length; some fail fast,
        some time out (input still billed)."""
        s, time = self._in_sessions(sessions, self.rng.poisson(AI_REQUESTS_PER_SESSION, len(sessions.ids)))
        n = len(s)
        model, status = self._pick(AI_MODEL_P, n), self._pick(AI_STATUS_P, n)
        tokens_in = self._lognormal(600, 0.8, n, 20, 20_000)
        tokens_out = np.where(status == 0, self._lognormal(180, 0.9, n, 1, 4_000), 0)
        cost = tokens_in * AI_PRICE_MICROS[model, 0] * (status != 1) + tokens_out * AI_PRICE_MICROS[model, 1]
        duration = np.select([status == 0, status == 1],
                             [250 + tokens_out * AI_MS_PER_TOKEN[model] * self.rng.lognormal(0, 0.3, n),
                              self._uniform(50, 2000, n)], AI_TIMEOUT_MS)
        return self._emit(
            "ai_requests", id=_ids("ai", self._take("ai_request", n)),
            user_id=_ids("u", self.users.user[sessions.rows[s]]),
            model=_labels(AI_MODELS, model), feature=_labels(AI_FEATURES, self._pick(AI_FEATURE_P, n)),
            input_tokens=tokens_in, output_tokens=tokens_out, cost_micros=np.round(cost).astype(np.int64),
            status=_labels(AI_STATUS, status), duration_ms=duration.astype(np.int64), created_at=time,
            updated_at=self._updated_at(time))

    def _purchases(self, sessions: _Sessions) -> tuple[str, Frame]:
        """One-time in-app purchases (boosts, super-like packs) during sessions."""
        s, time = self._in_sessions(sessions, self._chance(PURCHASE_SHARE, len(sessions.ids)).astype(np.int64))
        n = len(s)
        return self._payments(self.users.user[sessions.rows[s]], np.full(n, -1), "one_time", sessions.platform[s],
                              PURCHASE_PRICES_CENTS[self._pick((.4, .3, .2, .1), n)], time,
                              self._chance(0.05, n), store_fee=0.30, refund_share=0.02)

    # ---- business messaging --------------------------------------------------------------------------
    def _messaging(self, d: int, day: int) -> list[tuple[str, Frame]]:
        return [self._contacts(d, day), *self._campaigns(d, day), *self._support_conversations(d, day)]

    def _contacts(self, d: int, day: int) -> tuple[str, Frame]:
        """New contacts of each account, mostly in business hours; some later block or are deleted."""
        n = self._volume(CONTACTS_PER_DAY, d, BUSINESS_WEEKDAY)
        contacts, account = self._take("contact", n), self._pick(ACCOUNT_P, n)
        self.contact_account.extend(account)
        for a, store in enumerate(self.account_contacts):
            store.extend(contacts[account == a])
        created = day + self._time_of_day(n, BUSINESS_HOURS)
        blocked = np.where(self._chance(0.04, n), self._by_now(created + self._exponential(20 * DAY, n)), NEVER)
        deleted = np.where(self._chance(0.03, n), self._by_now(created + self._exponential(45 * DAY, n)), NEVER)
        return self._emit("contacts", id=_ids("ct", contacts), account_id=_labels(ACCOUNTS, account),
                          created_at=created, blocked_at=blocked, deleted_at=deleted,
                          updated_at=self._updated_at(created, blocked, deleted))

    def _campaigns(self, d: int, day: int) -> list[tuple[str, Frame]]:
        """Campaigns are drafted, scheduled, then send one message per recipient (each opening a
        conversation) until completed; a few fail part-way. Recipients sometimes reply."""
        n = self._volume(CAMPAIGNS_PER_DAY, d, BUSINESS_WEEKDAY)
        ids, account = self._take("campaign", n), self._pick(ACCOUNT_P, n)
        available = np.array([len(store.values) for store in self.account_contacts])[account]
        recipients = np.minimum(self._lognormal(CAMPAIGN_MEDIAN_RECIPIENTS, 0.8, n, 1, 10**5), available)
        created = day + self._time_of_day(n, BUSINESS_HOURS)
        draft = self._chance(0.08, n)
        start = np.where(draft, NEVER, created + self._uniform(HOUR, 5 * DAY, n))
        sending = self._lognormal(8 * HOUR, 0.6, n)  # rate-limited sends spread over hours
        failed_at = np.where(self._chance(0.05, n), start + (self.rng.uniform(0.1, 0.9, n) * sending).astype(np.int64),
                             NEVER)
        completed = self._by_now(np.where(failed_at < NEVER, NEVER, start + sending))
        status = np.select([draft, start >= self.as_of, failed_at < self.as_of, completed < NEVER], [0, 1, 4, 3], 2)
        frame = self._emit(
            "campaigns", id=_ids("cmp", ids), account_id=_labels(ACCOUNTS, account),
            name=np.char.add(_labels(CAMPAIGN_THEMES, self._pick(np.ones(len(CAMPAIGN_THEMES)), n)).astype(str),
                             np.char.add(" #", ids.astype(str))),
            status=_labels(CAMPAIGN_STATUS, status), created_at=created, started_at=self._by_now(start),
            completed_at=completed, recipients_count=recipients,
            updated_at=self._updated_at(created, start, failed_at, completed))

        c = np.repeat(np.arange(n), np.where(draft, 0, recipients))
        sent = start[c] + (self.rng.random(len(c)) * sending[c]).astype(np.int64)
        before_stop = sent < np.minimum(failed_at[c], self.as_of)
        c, sent = c[before_stop], sent[before_stop]
        contact = np.empty(len(c), np.int64)
        for a, store in enumerate(self.account_contacts):
            mine = account[c] == a
            contact[mine] = store.values[self.rng.integers(0, max(len(store.values), 1), mine.sum())]
        return [frame, *self._conversations(contact, account[c], sent, ids[c], responded_at=None)]

    def _support_conversations(self, d: int, day: int) -> list[tuple[str, Frame]]:
        """Contacts write in (any time of day); most get a first response, after minutes to hours."""
        contacts = len(self.contact_account.values)
        n = self._volume(CONVERSATIONS_PER_DAY, d, BUSINESS_WEEKDAY) if contacts else 0
        contact = self.rng.integers(0, max(contacts, 1), n)
        opened = day + self._time_of_day(n, APP_HOURS)
        response = np.where(self._chance(0.9, n), opened + self._lognormal(15 * MINUTE, 1.5, n, 5 * US), NEVER)
        return self._conversations(contact, self.contact_account.values[contact], opened, np.full(n, -1),
                                   responded_at=self._by_now(response))

    def _conversations(self, contact, account, opened, campaign, responded_at) -> list[tuple[str, Frame]]:
        """Conversations and their messages. A support conversation (responded_at given) opens with an
        inbound message answered at responded_at; a campaign conversation opens with the campaign's
        outbound message. A contact may reply to an outbound message, and support answers that reply.
        Conversations close some hours after their last message (some stay open)."""
        n = len(contact)
        conv = self._take("conversation", n)
        support = responded_at is not None
        first = self._message_part(np.arange(n), opened, inbound=support, reply_share=0 if support else 0.12)
        parts = [first]
        if support:
            answered = np.flatnonzero(responded_at < NEVER)
            parts.append(self._message_part(answered, responded_at[answered], inbound=False, reply_share=0.45))
        replied = parts[-1]["reply_at"] < self.as_of
        reply = self._message_part(parts[-1]["conv"][replied], parts[-1]["reply_at"][replied], inbound=True)
        parts.append(reply)
        if support:
            follow_up = reply["created"] + self._lognormal(15 * MINUTE, 1.2, len(reply["conv"]))
            keep = follow_up < self.as_of
            parts.append(self._message_part(reply["conv"][keep], follow_up[keep], inbound=False))
        msg = {k: np.concatenate([p[k] for p in parts]) for k in first}

        last = opened.copy()
        np.maximum.at(last, msg["conv"], msg["created"])
        closed = np.where(self._chance(0.85, n), self._by_now(last + self._exponential(12 * HOUR, n, MINUTE)), NEVER)
        conv_frame = self._emit(
            "conversations", id=_ids("cv", conv), account_id=_labels(ACCOUNTS, account),
            contact_id=_ids("ct", contact), opened_at=opened,
            first_response_at=responded_at if support else np.full(n, NEVER), closed_at=closed,
            updated_at=self._updated_at(opened, last, closed))
        m = msg["conv"]
        status_times = {f"{s}_at": msg[s] for s in ("sent", "delivered", "read", "failed", "replied")}
        message_frame = self._emit(
            "messages", id=_ids("msg", self._take("message", len(m))), account_id=_labels(ACCOUNTS, account[m]),
            conversation_id=_ids("cv", conv[m]), contact_id=_ids("ct", contact[m]),
            campaign_id=_ids("cmp", campaign[m]),
            direction=np.where(msg["inbound"], "inbound", "outbound").astype(object),
            status=_labels(MESSAGE_STATUS, msg["status"]), created_at=msg["created"], **status_times,
            updated_at=self._updated_at(msg["created"], *status_times.values()))
        return [conv_frame, message_frame]

    def _message_part(self, conv, created, inbound: bool, reply_share: float = 0.0) -> dict[str, np.ndarray]:
        """Messages of one kind with their delivery receipts, each at least a second after the one
        before and some on the next day: sent, delivered, then read (read and replied outbound
        messages; the reply is a new inbound message), or failed. Status is the last stage reached
        by as_of; later receipts are not recorded yet."""
        n = len(conv)
        failed = self._chance(0.005 if inbound else 0.03, n)
        sent = created + self._uniform(US, 20 * US, n)
        delivered = np.where(self._chance(0.97, n), sent + self._lognormal(5 * US, 2.0, n), NEVER)
        read = np.where((delivered < NEVER) & self._chance(0.85 if inbound else 0.6, n),
                        delivered + self._lognormal(20 * MINUTE, 2.0, n), NEVER)
        reply = np.where((read < NEVER) & self._chance(reply_share, n), read + self._lognormal(20 * MINUTE, 1.5, n),
                         NEVER)
        sent, delivered, read, reply = (np.where(failed, NEVER, t) for t in (sent, delivered, read, reply))
        failed_at = self._by_now(np.where(failed, created + self._uniform(US, MINUTE, n), NEVER))
        sent, delivered, read = self._by_now(sent), self._by_now(delivered), self._by_now(read)
        status = np.select([failed_at < NEVER, read < NEVER, delivered < NEVER, sent < NEVER], [4, 3, 2, 1], 0)
        return dict(conv=conv, created=created, inbound=np.full(n, inbound), status=status, sent=sent,
                    delivered=delivered, read=read, failed=failed_at, replied=self._by_now(reply), reply_at=reply)

    # ---- marketing ------------------------------------------------------------------------------------
    def _marketing(self, d: int, day: int) -> list[tuple[str, Frame]]:
        return [self._posts(d, day), self._ad_spend(d, day)]

    def _posts(self, d: int, day: int) -> tuple[str, Frame]:
        """Organic posts move through the content workflow; most get posted a day or two after
        creation, a few fail. Counters grow with age and are synced a few times a day for a month."""
        n = self._volume(POSTS_PER_DAY, d, BUSINESS_WEEKDAY)
        platform = self._pick(POST_PLATFORM_P, n)
        created = day + self._time_of_day(n, BUSINESS_HOURS)
        outcome = self._pick((.04, .04, .05, .05, .77, .05), n)  # POST_STATUS order
        posted = self._by_now(np.where(outcome == 4, created + self._exponential(1.5 * DAY, n, 10 * MINUTE), NEVER))
        status = np.where((outcome == 4) & (posted == NEVER), 3, outcome)
        last_sync = np.minimum(self.as_of - 1, posted + 30 * DAY + self._uniform(0, DAY, n))
        synced = last_sync - (self.rng.random(n) * np.minimum(6 * HOUR, last_sync - posted)).astype(np.int64)
        age_days = np.where(posted < NEVER, (synced - posted) / DAY, 0.0)
        reach = POST_MEDIAN_VIEWS[platform] * self.rng.lognormal(0, 1.3, n)
        views = self.rng.poisson(reach * (1 - np.exp(-age_days / 2)))
        return self._emit(
            "marketing_posts", id=_ids("post", self._take("post", n)), platform=_labels(POST_PLATFORMS, platform),
            category=_labels(POST_CATEGORIES, self._pick(np.ones(len(POST_CATEGORIES)), n)),
            status=_labels(POST_STATUS, status), created_at=created, posted_at=posted, views=views,
            likes=self.rng.binomial(views, self.rng.uniform(0.02, 0.1, n)), comments=self.rng.binomial(views, 0.004),
            shares=self.rng.binomial(views, 0.003),
            updated_at=np.where(posted < NEVER, synced, self._updated_at(created)))

    def _ad_spend(self, d: int, day: int) -> tuple[str, Frame]:
        """Daily spend per running campaign (always-on ones and three-week flights), with
        impressions from the channel's CPM, clicks from its CTR and conversions from its CVR.
        Reported the next morning, sometimes restated days later."""
        channel, campaign, budget, flight = (np.array(col) for col in zip(*AD_CAMPAIGNS))
        running = ~flight | ((d + self.flight_phase) % FLIGHT_CYCLE_DAYS < FLIGHT_DAYS)
        channel, campaign, budget = channel[running], campaign[running], budget[running]
        n = len(channel)
        spend = np.round(budget * 100 * self._seasonal(d, AD_WEEKDAY) * self.rng.lognormal(0, 0.15, n)).astype(np.int64)
        impressions = self.rng.poisson(spend / AD_CHANNEL_CPM_CENTS[channel] * 1000)
        clicks = self.rng.binomial(impressions, AD_CHANNEL_CTR[channel])
        reported = np.full(n, min(day + DAY + 6 * HOUR, self.as_of - HOUR))
        return self._emit(
            "ad_spend_daily", date=np.full(n, np.datetime64(self.first_day + d, "D")),
            channel=_labels(AD_CHANNELS, channel), campaign_id=campaign.astype(object), spend_cents=spend,
            impressions=impressions, clicks=clicks, conversions=self.rng.binomial(clicks, AD_CHANNEL_CVR[channel]),
            updated_at=self._updated_at(reported))
