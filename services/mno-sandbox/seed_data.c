/* The sandbox's schema and its seeded subscribers, as numbered migrations
 * (store_open applies the ones a file has not seen yet).
 *
 * Money is integer minor units of PKR (scale 2): 52075 is PKR 520.75.
 * Times are relative: a subscribed plan stores how long after "now" it
 * expires (expires_in_s), so its expirationTime is always in the future
 * (store_subscribers.c counts from the start of the current UTC hour, so
 * answers stay identical within an hour).
 *
 * Texts live in their own tables, one row per language; English ("en") is
 * required and is the fallback for any language without a row. */
#include "mno_sandbox.h"

static const char schema_v1[] =
    "CREATE TABLE subscribers (\n"
    "  msisdn            TEXT PRIMARY KEY,          -- E.164 digits, no '+'\n"
    "  opet              TEXT UNIQUE,               -- operator token for customerIdType=OPET\n"
    "  subscription_type TEXT NOT NULL CHECK (subscription_type IN "
    "('UNSPECIFIED','PREPAID','POSTPAID')),\n"
    "  price_plan        TEXT NOT NULL,\n"
    "  balance_minor     INTEGER NOT NULL,          -- monetaryBalance, PKR minor units\n"
    "  loan_minor        INTEGER NOT NULL DEFAULT 0, -- outstanding loan (loanBalance), 0 = none\n"
    "  subscriber_state  TEXT NOT NULL CHECK (subscriber_state IN "
    "('GOOD_TO_GO','NEED_OFFERS','NEED_LOANS','NEED_TOPUP')),\n"
    "  status            TEXT NOT NULL CHECK (status IN ('ACTIVE','BARRED','ROAMING'))\n"
    ");\n"
    "CREATE TABLE plan_texts (\n"
    "  plan_id TEXT NOT NULL,\n"
    "  lang    TEXT NOT NULL,\n"
    "  name    TEXT NOT NULL,\n"
    "  PRIMARY KEY (plan_id, lang)\n"
    ");\n"
    "CREATE TABLE subscribed_plans (\n"
    "  msisdn           TEXT NOT NULL REFERENCES subscribers(msisdn),\n"
    "  position         INTEGER NOT NULL,\n"
    "  plan_id          TEXT NOT NULL,\n"
    "  expires_in_s     INTEGER NOT NULL,\n"
    "  app_type         TEXT NOT NULL,             -- comma-separated application enum values\n"
    "  unit             TEXT NOT NULL CHECK (unit IN ('BYTES','MINUTES')),\n"
    "  quota            INTEGER NOT NULL,\n"
    "  remaining        INTEGER NOT NULL,\n"
    "  overusage_policy TEXT NOT NULL CHECK (overusage_policy IN "
    "('THROTTLED','BLOCKED','PAY_AS_YOU_GO')),\n"
    "  speed_limit      INTEGER,                   -- kbps, NULL = none\n"
    "  recurrence_days  INTEGER,                   -- renewal period, NULL = one-off\n"
    "  PRIMARY KEY (msisdn, position)\n"
    ");\n"
    "CREATE TABLE offers (\n"
    "  offer_id         TEXT PRIMARY KEY,\n"
    "  offer_type       TEXT NOT NULL,             -- Data, Voice, SMS, Social, Video, Music "
    "(offerType filter)\n"
    "  fund_source      TEXT NOT NULL CHECK (fund_source IN ('WALLET','LOAN')),\n"
    "  unit             TEXT NOT NULL CHECK (unit IN ('BYTES','MINUTES')),\n"
    "  quota            INTEGER NOT NULL,\n"
    "  app_type         TEXT NOT NULL,\n"
    "  overusage_policy TEXT NOT NULL CHECK (overusage_policy IN "
    "('THROTTLED','BLOCKED','PAY_AS_YOU_GO')),\n"
    "  speed_limit      INTEGER,\n"
    "  duration_s       INTEGER NOT NULL,\n"
    "  cost_minor       INTEGER NOT NULL CHECK (cost_minor >= 0),\n"
    "  recurrence       TEXT CHECK (recurrence IN ('DAILY','WEEKLY','MONTHLY'))\n"
    ");\n"
    "CREATE TABLE offer_texts (\n"
    "  offer_id          TEXT NOT NULL REFERENCES offers(offer_id),\n"
    "  lang              TEXT NOT NULL,\n"
    "  name              TEXT NOT NULL,\n"
    "  description       TEXT NOT NULL,\n"
    "  short_description TEXT NOT NULL,\n"
    "  PRIMARY KEY (offer_id, lang)\n"
    ");\n"
    "CREATE TABLE subscriber_offers (\n"
    "  msisdn   TEXT NOT NULL REFERENCES subscribers(msisdn),\n"
    "  position INTEGER NOT NULL,                  -- the operator's ranking\n"
    "  offer_id TEXT NOT NULL REFERENCES offers(offer_id),\n"
    "  PRIMARY KEY (msisdn, position)\n"
    ");\n";

/* Sizes used below: 3145728000 B = 3000 MiB, 1073741824 B = 1 GiB. */
static const char seed_v2[] =
    "INSERT INTO subscribers (msisdn, opet, subscription_type, price_plan, balance_minor, "
    "loan_minor, subscriber_state, status) VALUES\n"
    "  ('924542610003', 'OPET-tp-0003', 'PREPAID',  'djuice',              52075,    0, "
    "'GOOD_TO_GO',  'ACTIVE'),\n"
    "  ('924542610000', NULL,           'PREPAID',  'djuice',                  0, 5000, "
    "'NEED_TOPUP',  'ACTIVE'),\n"
    "  ('924542610001', NULL,           'PREPAID',  'Talkshawk',           30000,    0, "
    "'NEED_OFFERS', 'ACTIVE'),\n"
    "  ('924542610002', NULL,           'PREPAID',  'djuice',                  0,    0, "
    "'NEED_LOANS',  'ACTIVE'),\n"
    "  ('924542610004', NULL,           'PREPAID',  'djuice',              10000,    0, "
    "'GOOD_TO_GO',  'ROAMING'),\n"
    "  ('924542610005', NULL,           'PREPAID',  'djuice',                  0,    0, "
    "'NEED_TOPUP',  'BARRED'),\n"
    "  ('924542610006', NULL,           'POSTPAID', 'Postpaid Smart 1000', 250000,    0, "
    "'GOOD_TO_GO',  'ACTIVE');\n"
    "\n"
    "INSERT INTO plan_texts (plan_id, lang, name) VALUES\n"
    "  ('tp-plan-3g-weekly',      'en', '3G Weekly Bundle'),\n"
    "  ('tp-plan-3g-weekly',      'ur', 'تھری جی ہفتہ وار بنڈل'),\n"
    "  ('tp-plan-3g-daily',       'en', '3G Daily Bundle'),\n"
    "  ('tp-plan-3g-daily',       'ur', 'تھری جی روزانہ بنڈل'),\n"
    "  ('tp-plan-social-daily',   'en', 'Daily Social Pack'),\n"
    "  ('tp-plan-social-daily',   'ur', 'روزانہ سوشل پیک'),\n"
    "  ('tp-plan-minutes-weekly', 'en', 'Weekly Minutes'),\n"
    "  ('tp-plan-minutes-weekly', 'ur', 'ہفتہ وار منٹ'),\n"
    "  ('tp-plan-postpaid-data',  'en', 'Smart 1000 Data'),\n"
    "  ('tp-plan-postpaid-data',  'ur', 'سمارٹ 1000 ڈیٹا'),\n"
    "  ('tp-plan-postpaid-voice', 'en', 'Smart 1000 Minutes'),\n"
    "  ('tp-plan-postpaid-voice', 'ur', 'سمارٹ 1000 منٹ');\n"
    "\n"
    "INSERT INTO subscribed_plans (msisdn, position, plan_id, expires_in_s, app_type, unit, quota, "
    "remaining, overusage_policy, speed_limit, recurrence_days) VALUES\n"
    "  ('924542610003', 1, 'tp-plan-3g-weekly',      432000, 'GENERIC',          'BYTES',   "
    "3000000000,  2500000000,  'THROTTLED',     384,  7),\n"
    "  ('924542610003', 2, 'tp-plan-social-daily',    72000, 'SOCIAL,MESSAGING', 'BYTES',   "
    "1073741824,   734003200,  'PAY_AS_YOU_GO', 384,  1),\n"
    "  ('924542610003', 3, 'tp-plan-minutes-weekly', 259200, 'GENERIC',          'MINUTES',        "
    "300,         238,  'BLOCKED',       NULL, 7),\n"
    "  ('924542610000', 1, 'tp-plan-3g-daily',        36000, 'GENERIC',          'BYTES',   "
    "3145728000,           0,  'BLOCKED',       384,  NULL),\n"
    "  ('924542610001', 1, 'tp-plan-3g-daily',        36000, 'GENERIC',          'BYTES',   "
    "3145728000,    10485760,  'THROTTLED',     384,  1),\n"
    "  ('924542610002', 1, 'tp-plan-social-daily',    18000, 'SOCIAL,MESSAGING', 'BYTES',   "
    "1073741824,     5242880,  'BLOCKED',       384,  NULL),\n"
    "  ('924542610004', 1, 'tp-plan-3g-weekly',      518400, 'GENERIC',          'BYTES',   "
    "3000000000,  3000000000,  'THROTTLED',     384,  7),\n"
    "  ('924542610006', 1, 'tp-plan-postpaid-data', 1555200, 'GENERIC',          'BYTES',  "
    "21474836480, 15032385536,  'THROTTLED',    1024, 30),\n"
    "  ('924542610006', 2, 'tp-plan-postpaid-voice',1555200, 'GENERIC',          'MINUTES',       "
    "1000,         870,  'PAY_AS_YOU_GO', NULL, 30);\n"
    "\n"
    "INSERT INTO offers (offer_id, offer_type, fund_source, unit, quota, app_type, "
    "overusage_policy, speed_limit, duration_s, cost_minor, recurrence) VALUES\n"
    "  ('tp-data-daily-3gb',     'Data',   'WALLET', 'BYTES',   3145728000, 'GENERIC',          "
    "'THROTTLED',      384,   86400,  16000, 'DAILY'),\n"
    "  ('tp-social-daily',       'Social', 'WALLET', 'BYTES',   1073741824, 'SOCIAL,MESSAGING', "
    "'PAY_AS_YOU_GO',  384,   86400,   6000, 'DAILY'),\n"
    "  ('tp-video-hour',         'Video',  'WALLET', 'BYTES',   2147483648, 'VIDEO',            "
    "'BLOCKED',       2048,    3600,   1550, NULL),\n"
    "  ('tp-music-daily',        'Music',  'WALLET', 'BYTES',    524288000, 'MUSIC',            "
    "'THROTTLED',      256,   86400,   2500, 'DAILY'),\n"
    "  ('tp-voice-weekly',       'Voice',  'WALLET', 'MINUTES',        300, 'GENERIC',          "
    "'BLOCKED',       NULL,  604800,  12000, 'WEEKLY'),\n"
    "  ('tp-data-monthly-10gb',  'Data',   'WALLET', 'BYTES',  10737418240, 'GENERIC',          "
    "'THROTTLED',      512, 2592000, 100000, 'MONTHLY'),\n"
    "  ('tp-loan-data-500mb',    'Data',   'LOAN',   'BYTES',    524288000, 'GENERIC',          "
    "'BLOCKED',        384,   86400,   2000, NULL),\n"
    "  ('tp-loan-social-200mb',  'Social', 'LOAN',   'BYTES',    209715200, 'SOCIAL',           "
    "'BLOCKED',        256,   86400,   1000, NULL);\n"
    "\n"
    "INSERT INTO offer_texts (offer_id, lang, name, description, short_description) VALUES\n"
    "  ('tp-data-daily-3gb',    'en', '3G Daily Bundle',     '3000 MB of internet for 24 hours',   "
    "                      '3000 MB, 1 day'),\n"
    "  ('tp-data-daily-3gb',    'ur', 'تھری جی روزانہ بنڈل', '24 گھنٹوں کے لیے 3000 ایم بی "
    "انٹرنیٹ',                     '3000 ایم بی، 1 دن'),\n"
    "  ('tp-social-daily',      'en', 'Daily Social Pack',   '1 GB for WhatsApp, Facebook and "
    "Instagram for 24 hours',    '1 GB social, 1 day'),\n"
    "  ('tp-social-daily',      'ur', 'روزانہ سوشل پیک',     '24 گھنٹوں کے لیے واٹس ایپ، فیس بک "
    "اور انسٹاگرام کے لیے 1 جی بی', '1 جی بی سوشل، 1 دن'),\n"
    "  ('tp-video-hour',        'en', 'Video Hour',          '2 GB for video streaming for one "
    "hour',                     '2 GB video, 1 hour'),\n"
    "  ('tp-video-hour',        'ur', 'ویڈیو گھنٹہ',          'ایک گھنٹے کے لیے ویڈیو اسٹریمنگ کے "
    "لیے 2 جی بی',             '2 جی بی ویڈیو، 1 گھنٹہ'),\n"
    "  ('tp-music-daily',       'en', 'Music Day Pass',      '500 MB for music streaming for 24 "
    "hours',                   '500 MB music, 1 day'),\n"
    "  ('tp-music-daily',       'ur', 'میوزک ڈے پاس',        '24 گھنٹوں کے لیے میوزک اسٹریمنگ کے "
    "لیے 500 ایم بی',          '500 ایم بی میوزک، 1 دن'),\n"
    "  ('tp-voice-weekly',      'en', 'Weekly Minutes',      '300 on-net minutes for 7 days',      "
    "                       '300 min, 7 days'),\n"
    "  ('tp-voice-weekly',      'ur', 'ہفتہ وار منٹ',         '7 دن کے لیے 300 آن نیٹ منٹ',        "
    "                        '300 منٹ، 7 دن'),\n"
    "  ('tp-data-monthly-10gb', 'en', 'Monthly Mega Bundle', '10 GB of internet for 30 days',      "
    "                       '10 GB, 30 days'),\n"
    "  ('tp-data-monthly-10gb', 'ur', 'ماہانہ میگا بنڈل',     '30 دن کے لیے 10 جی بی انٹرنیٹ',     "
    "                         '10 جی بی، 30 دن'),\n"
    "  ('tp-loan-data-500mb',   'en', 'Emergency Data Loan', '500 MB now, paid back from your next "
    "top-up',               '500 MB loan, 1 day'),\n"
    "  ('tp-loan-data-500mb',   'ur', 'ہنگامی ڈیٹا قرض',      'ابھی 500 ایم بی، اگلے ری چارج سے "
    "ادائیگی',                    '500 ایم بی قرض، 1 دن'),\n"
    "  ('tp-loan-social-200mb', 'en', 'Social Loan Pack',    '200 MB for social apps now, paid "
    "back from your next top-up', '200 MB social loan, 1 day'),\n"
    "  ('tp-loan-social-200mb', 'ur', 'سوشل قرض پیک',         'ابھی سوشل ایپس کے لیے 200 ایم بی، "
    "اگلے ری چارج سے ادائیگی',    '200 ایم بی سوشل قرض، 1 دن');\n"
    "\n"
    "INSERT INTO subscriber_offers (msisdn, position, offer_id) VALUES\n"
    "  ('924542610003', 1, 'tp-data-daily-3gb'),\n"
    "  ('924542610003', 2, 'tp-social-daily'),\n"
    "  ('924542610003', 3, 'tp-video-hour'),\n"
    "  ('924542610003', 4, 'tp-music-daily'),\n"
    "  ('924542610003', 5, 'tp-voice-weekly'),\n"
    "  ('924542610003', 6, 'tp-data-monthly-10gb'),\n"
    "  ('924542610001', 1, 'tp-social-daily'),\n"
    "  ('924542610001', 2, 'tp-data-daily-3gb'),\n"
    "  ('924542610001', 3, 'tp-video-hour'),\n"
    "  ('924542610002', 1, 'tp-loan-data-500mb'),\n"
    "  ('924542610002', 2, 'tp-loan-social-200mb'),\n"
    "  ('924542610004', 1, 'tp-data-daily-3gb'),\n"
    "  ('924542610006', 1, 'tp-data-monthly-10gb'),\n"
    "  ('924542610006', 2, 'tp-data-daily-3gb'),\n"
    "  ('924542610006', 3, 'tp-voice-weekly');\n";

/* Activations (POST /activate): the writable part of the sandbox.
 *
 * subscribed_plans.expires_at_s: absolute expiry (Unix seconds) of a plan
 * bought through /activate; NULL for seeded plans, whose expiry stays
 * relative (expires_in_s).
 * offers.async: 1 = activation answers PENDING and completes later (a
 * background thread, then a callback), like an operator that provisions
 * asynchronously.
 * activations: one row per transId (the idempotency key), whatever the
 * outcome, so a repeat answers what the first call answered. */
#define SCHEMA_V3                                                                                 \
    "ALTER TABLE subscribed_plans ADD COLUMN expires_at_s INTEGER;\n"                             \
    "ALTER TABLE offers ADD COLUMN async INTEGER NOT NULL DEFAULT 0 CHECK (async IN (0, 1));\n"   \
    "CREATE TABLE activations (\n"                                                                \
    "  trans_id          TEXT PRIMARY KEY,\n"                                                     \
    "  customer          TEXT NOT NULL,            -- the subscriber's MSISDN (also for OPET "    \
    "calls)\n"                                                                                    \
    "  channel_id        TEXT NOT NULL,\n"                                                        \
    "  service_provider  TEXT NOT NULL,\n"                                                        \
    "  offer_id          TEXT NOT NULL,            -- as requested (may be unknown: "             \
    "INVALID_PRODUCT)\n"                                                                          \
    "  fund_source       TEXT CHECK (fund_source IN ('WALLET','LOAN')),\n"                        \
    "  amount_minor      INTEGER NOT NULL DEFAULT 0,\n"                                           \
    "  status            TEXT NOT NULL CHECK (status IN ('OK','PENDING','FAIL')),\n"              \
    "  http_status       INTEGER NOT NULL,         -- what /activate answered; a repeat answers " \
    "it again\n"                                                                                  \
    "  error_type        TEXT,\n"                                                                 \
    "  error_message     TEXT,\n"                                                                 \
    "  confirmation_code TEXT,\n"                                                                 \
    "  debits            INTEGER NOT NULL DEFAULT 0 CHECK (debits IN (0, 1)),\n"                  \
    "  refunds           INTEGER NOT NULL DEFAULT 0 CHECK (refunds IN (0, 1)),\n"                 \
    "  created_ms        INTEGER NOT NULL,\n"                                                     \
    "  completed_ms      INTEGER,\n"                                                              \
    "  callback_url      TEXT,\n"                                                                 \
    "  callback_attempts INTEGER NOT NULL DEFAULT 0,\n"                                           \
    "  callback_status   INTEGER                   -- last callback POST's HTTP status, 0 = no "  \
    "answer\n"                                                                                    \
    ");\n"                                                                                        \
    "CREATE INDEX activations_created ON activations (created_ms);\n"

/* The async offer: a weekly bundle provisioned asynchronously (PENDING,
 * then a callback), PKR 250.00 from the wallet. */
#define SEED_V3                                                                                                                        \
    "INSERT INTO offers (offer_id, offer_type, fund_source, unit, quota, app_type, "                                                   \
    "overusage_policy, speed_limit, duration_s, cost_minor, recurrence, async) VALUES\n"                                               \
    "  ('tp-data-weekly-async',  'Data',   'WALLET', 'BYTES',   5368709120, 'GENERIC',          "                                      \
    "'THROTTLED',      512,  604800,  25000, 'WEEKLY', 1);\n"                                                                          \
    "\n"                                                                                                                               \
    "INSERT INTO offer_texts (offer_id, lang, name, description, short_description) VALUES\n"                                          \
    "  ('tp-data-weekly-async', 'en', 'Weekly Data Bundle',  '5 GB of internet for 7 days, "                                           \
    "activated within a minute',  '5 GB, 7 days'),\n"                                                                                  \
    "  ('tp-data-weekly-async', 'ur', 'ہفتہ وار ڈیٹا بنڈل',   '7 دن کے لیے 5 جی بی انٹرنیٹ، ایک " \
    "منٹ میں فعال',          '5 جی بی، 7 دن');\n"                                                                     \
    "\n"                                                                                                                               \
    "INSERT INTO subscriber_offers (msisdn, position, offer_id) VALUES\n"                                                              \
    "  ('924542610003', 7, 'tp-data-weekly-async'),\n"                                                                                 \
    "  ('924542610006', 4, 'tp-data-weekly-async');\n"

static const char migration_v3[] = SCHEMA_V3 SEED_V3;
static const char seed_v3[] = SEED_V3;

/* All four fund sources of the rich-notification spec's FundSource (the
 * backend spec lists only WALLET and LOAN): EWALLET is paid from the
 * subscriber's e-wallet (Easypaisa at Telenor Pakistan), a balance apart
 * from the airtime of balance_minor; FREE costs nothing.
 *
 * subscribers.ewallet_minor: the e-wallet balance, PKR minor units
 * (accountStatus.ewalletBalance when > 0, a non-spec extension like
 * loanBalance).
 * The CHECKs on offers.fund_source and activations.fund_source cannot be
 * altered in place, so both tables are rebuilt. foreign_keys is on and a
 * migration runs in one transaction (where the pragma cannot be turned
 * off), so the offers' children are parked in temporary tables first:
 * dropping a parent row that children still reference would fail. */
#define FUND_SOURCES "('WALLET','EWALLET','LOAN','FREE')"
#define SCHEMA_V4                                                                    \
    "ALTER TABLE subscribers ADD COLUMN ewallet_minor INTEGER NOT NULL DEFAULT 0"    \
    " CHECK (ewallet_minor >= 0);\n"                                                 \
    "CREATE TEMP TABLE offer_texts_v3 AS SELECT * FROM offer_texts;\n"               \
    "CREATE TEMP TABLE subscriber_offers_v3 AS SELECT * FROM subscriber_offers;\n"   \
    "CREATE TEMP TABLE offers_v3 AS SELECT * FROM offers;\n"                         \
    "DROP TABLE subscriber_offers;\n"                                                \
    "DROP TABLE offer_texts;\n"                                                      \
    "DROP TABLE offers;\n"                                                           \
    "CREATE TABLE offers (\n"                                                        \
    "  offer_id         TEXT PRIMARY KEY,\n"                                         \
    "  offer_type       TEXT NOT NULL,\n"                                            \
    "  fund_source      TEXT NOT NULL CHECK (fund_source IN " FUND_SOURCES "),\n"    \
    "  unit             TEXT NOT NULL CHECK (unit IN ('BYTES','MINUTES')),\n"        \
    "  quota            INTEGER NOT NULL,\n"                                         \
    "  app_type         TEXT NOT NULL,\n"                                            \
    "  overusage_policy TEXT NOT NULL CHECK (overusage_policy IN "                   \
    "('THROTTLED','BLOCKED','PAY_AS_YOU_GO')),\n"                                    \
    "  speed_limit      INTEGER,\n"                                                  \
    "  duration_s       INTEGER NOT NULL,\n"                                         \
    "  cost_minor       INTEGER NOT NULL CHECK (cost_minor >= 0),\n"                 \
    "  recurrence       TEXT CHECK (recurrence IN ('DAILY','WEEKLY','MONTHLY')),\n"  \
    "  async            INTEGER NOT NULL DEFAULT 0 CHECK (async IN (0, 1)),\n"       \
    "  CHECK (fund_source <> 'FREE' OR cost_minor = 0)\n"                            \
    ");\n"                                                                           \
    "CREATE TABLE offer_texts (\n"                                                   \
    "  offer_id          TEXT NOT NULL REFERENCES offers(offer_id),\n"               \
    "  lang              TEXT NOT NULL,\n"                                           \
    "  name              TEXT NOT NULL,\n"                                           \
    "  description       TEXT NOT NULL,\n"                                           \
    "  short_description TEXT NOT NULL,\n"                                           \
    "  PRIMARY KEY (offer_id, lang)\n"                                               \
    ");\n"                                                                           \
    "CREATE TABLE subscriber_offers (\n"                                             \
    "  msisdn   TEXT NOT NULL REFERENCES subscribers(msisdn),\n"                     \
    "  position INTEGER NOT NULL,\n"                                                 \
    "  offer_id TEXT NOT NULL REFERENCES offers(offer_id),\n"                        \
    "  PRIMARY KEY (msisdn, position)\n"                                             \
    ");\n"                                                                           \
    "INSERT INTO offers SELECT * FROM offers_v3;\n"                                  \
    "INSERT INTO offer_texts SELECT * FROM offer_texts_v3;\n"                        \
    "INSERT INTO subscriber_offers SELECT * FROM subscriber_offers_v3;\n"            \
    "DROP TABLE temp.offers_v3;\n"                                                   \
    "DROP TABLE temp.offer_texts_v3;\n"                                              \
    "DROP TABLE temp.subscriber_offers_v3;\n"                                        \
    "CREATE TABLE activations_v4 (\n"                                                \
    "  trans_id          TEXT PRIMARY KEY,\n"                                        \
    "  customer          TEXT NOT NULL,\n"                                           \
    "  channel_id        TEXT NOT NULL,\n"                                           \
    "  service_provider  TEXT NOT NULL,\n"                                           \
    "  offer_id          TEXT NOT NULL,\n"                                           \
    "  fund_source       TEXT CHECK (fund_source IN " FUND_SOURCES "),\n"            \
    "  amount_minor      INTEGER NOT NULL DEFAULT 0,\n"                              \
    "  status            TEXT NOT NULL CHECK (status IN ('OK','PENDING','FAIL')),\n" \
    "  http_status       INTEGER NOT NULL,\n"                                        \
    "  error_type        TEXT,\n"                                                    \
    "  error_message     TEXT,\n"                                                    \
    "  confirmation_code TEXT,\n"                                                    \
    "  debits            INTEGER NOT NULL DEFAULT 0 CHECK (debits IN (0, 1)),\n"     \
    "  refunds           INTEGER NOT NULL DEFAULT 0 CHECK (refunds IN (0, 1)),\n"    \
    "  created_ms        INTEGER NOT NULL,\n"                                        \
    "  completed_ms      INTEGER,\n"                                                 \
    "  callback_url      TEXT,\n"                                                    \
    "  callback_attempts INTEGER NOT NULL DEFAULT 0,\n"                              \
    "  callback_status   INTEGER\n"                                                  \
    ");\n"                                                                           \
    "INSERT INTO activations_v4 SELECT * FROM activations;\n"                        \
    "DROP TABLE activations;\n"                                                      \
    "ALTER TABLE activations_v4 RENAME TO activations;\n"                            \
    "CREATE INDEX activations_created ON activations (created_ms);\n"

/* A subscriber who pays with the e-wallet: PKR 5.00 of airtime (too little
 * for the Video Hour), PKR 150.00 in the e-wallet (one e-wallet bundle,
 * not two), and a free trial. */
#define SEED_V4                                                                                                                         \
    "INSERT INTO subscribers (msisdn, opet, subscription_type, price_plan, balance_minor, "                                             \
    "loan_minor, subscriber_state, status, ewallet_minor) VALUES\n"                                                                     \
    "  ('924542610007', NULL, 'PREPAID', 'djuice', 500, 0, 'NEED_OFFERS', 'ACTIVE', 15000);\n"                                          \
    "\n"                                                                                                                                \
    "INSERT INTO offers (offer_id, offer_type, fund_source, unit, quota, app_type, "                                                    \
    "overusage_policy, speed_limit, duration_s, cost_minor, recurrence) VALUES\n"                                                       \
    "  ('tp-ewallet-data-2gb',   'Data',   'EWALLET', 'BYTES', 2147483648, 'GENERIC', "                                                 \
    "'THROTTLED', 512, 86400, 12000, NULL),\n"                                                                                          \
    "  ('tp-free-social-trial',  'Social', 'FREE',    'BYTES',  104857600, 'SOCIAL',  "                                                 \
    "'BLOCKED',   256, 86400,     0, NULL);\n"                                                                                          \
    "\n"                                                                                                                                \
    "INSERT INTO offer_texts (offer_id, lang, name, description, short_description) VALUES\n"                                           \
    "  ('tp-ewallet-data-2gb',  'en', 'Easypaisa Data Day', '2 GB for 24 hours, paid from your "                                        \
    "Easypaisa wallet', '2 GB, 1 day, e-wallet'),\n"                                                                                    \
    "  ('tp-ewallet-data-2gb',  'ur', 'ایزی پیسہ ڈیٹا ڈے', '24 گھنٹوں کے لیے 2 جی بی، ایزی پیسہ " \
    "والیٹ سے ادائیگی', '2 جی بی، 1 دن، ای والیٹ'),\n"                                                     \
    "  ('tp-free-social-trial', 'en', 'Free Social Trial', '100 MB for social apps for 24 hours, "                                      \
    "free of charge', '100 MB social, free'),\n"                                                                                        \
    "  ('tp-free-social-trial', 'ur', 'مفت سوشل ٹرائل', '24 گھنٹوں کے لیے سوشل ایپس کے لیے 100 "    \
    "ایم بی، مفت', '100 ایم بی سوشل، مفت');\n"                                                                    \
    "\n"                                                                                                                                \
    "INSERT INTO subscriber_offers (msisdn, position, offer_id) VALUES\n"                                                               \
    "  ('924542610007', 1, 'tp-ewallet-data-2gb'),\n"                                                                                   \
    "  ('924542610007', 2, 'tp-free-social-trial'),\n"                                                                                  \
    "  ('924542610007', 3, 'tp-video-hour');\n"

static const char migration_v4[] = SCHEMA_V4 SEED_V4;
static const char seed_v4[] = SEED_V4;

/* v5: what the top-up extension records (store_topup.c): the messages
 * (SMS/USSD) Millom asked the operator to send, and the credits it asked
 * for, each credit once per transId. */
static const char migration_v5[] = "CREATE TABLE messages (\n"
                                   "  message_id INTEGER PRIMARY KEY,\n"
                                   "  msisdn TEXT NOT NULL,\n"
                                   "  channel TEXT NOT NULL,\n"
                                   "  text TEXT NOT NULL,\n"
                                   "  reference TEXT UNIQUE,\n"
                                   "  created_ms INTEGER NOT NULL\n"
                                   ");\n"
                                   "CREATE TABLE credits (\n"
                                   "  trans_id TEXT PRIMARY KEY,\n"
                                   "  msisdn TEXT NOT NULL,\n"
                                   "  amount_minor INTEGER NOT NULL,\n"
                                   "  created_ms INTEGER NOT NULL\n"
                                   ");\n";

const char *const mno_migrations[] = {schema_v1, seed_v2, migration_v3, migration_v4, migration_v5};
const size_t mno_migration_count = sizeof mno_migrations / sizeof mno_migrations[0];

/* POST /admin/reseed empties the tables and runs these again. */
const char *const mno_seeds[] = {seed_v2, seed_v3, seed_v4};
const size_t mno_seed_count = sizeof mno_seeds / sizeof mno_seeds[0];
