/* Every Kafka topic Millom uses, named once. Programs use these names;
 * devbroker creates the topics from millom_topics[]; and
 * docker/create-topics.sh (which runs inside the Kafka image, without
 * Millom's programs) is checked against the table by
 * tests/unit/test_shared_topics.c.
 *
 * Who writes and who reads each topic is in the README's "Kafka topics". */
#ifndef SHARED_TOPICS_H
#define SHARED_TOPICS_H

/* Requests and commands, each consumed by one service and with a
 * <topic>.dlq:
 *   queries                  api-edge, notifier -> offer-resolver
 *   purchase commands,
 *   activation callbacks,
 *   purchase look-ups        api-edge -> purchase-executor
 *   consents, CPID
 *   registrations, consent
 *   queries                  api-edge -> notifier
 *   settlement queries       api-edge -> settlement-reporter */
#define TOPIC_QUERIES "millom.queries"
#define TOPIC_PURCHASE_COMMANDS "millom.purchase.commands"
#define TOPIC_ACTIVATION_CALLBACKS "millom.activation.callbacks"
#define TOPIC_PURCHASE_LOOKUPS "millom.purchase.lookups"
#define TOPIC_CONSENTS "millom.consents"
#define TOPIC_CPID_REGISTRATIONS "millom.cpid.registrations"
#define TOPIC_CONSENT_QUERIES "millom.consent.queries"
#define TOPIC_SETTLEMENT_QUERIES "millom.settlement.queries"
/* top-up commands          api-edge -> purchase-executor (topups.c) */
#define TOPIC_TOPUP_COMMANDS "millom.topup.commands"

/* Events, consumed too, each with a <topic>.dlq:
 *   subscriber events        operators, api-edge -> notifier
 *   purchase events          purchase-executor -> offer-resolver, notifier,
 *                            settlement-reporter
 *   offer impressions        offer-resolver -> settlement-reporter */
#define TOPIC_SUBSCRIBER_EVENTS "millom.subscriber.events"
#define TOPIC_PURCHASE_EVENTS "millom.purchase.events"
#define TOPIC_OFFER_IMPRESSIONS "millom.offer.impressions"
/* top-up events            purchase-executor -> notifier (provider callbacks) */
#define TOPIC_TOPUP_EVENTS "millom.topup.events"

/* Outputs nobody inside Millom consumes as work:
 *   replies                  every service -> api-edge (shared/patterns/rpc.h)
 *   settlement records,
 *   reports (compacted)      settlement-reporter -> analysts
 *   notifications DLQ        notifier: deliveries that gave up */
#define TOPIC_REPLIES "millom.replies"
#define TOPIC_SETTLEMENT_RECORDS "millom.settlement.records"
#define TOPIC_SETTLEMENT_REPORTS "millom.settlement.reports"
#define TOPIC_NOTIFICATIONS_DLQ "millom.notifications.dlq"

/* State-store changelogs (shared/patterns/changelog.h), compacted. */
#define TOPIC_PURCHASE_CHANGELOG "millom.purchase.changelog"
#define TOPIC_NOTIFIER_CHANGELOG "millom.notifier.changelog"

/* The suffix of a consumed topic's dead-letter twin (shared/plumbing/kafka.c). */
#define TOPIC_DLQ_SUFFIX ".dlq"

typedef enum {
    TOPIC_KIND_CONSUMED,  /* has a <topic>.dlq; delete policy */
    TOPIC_KIND_OUTPUT,    /* delete policy, no DLQ twin */
    TOPIC_KIND_REPLIES,   /* millom.replies: its own partition count */
    TOPIC_KIND_COMPACTED, /* latest value per key: reports and changelogs */
} topic_kind;

typedef struct {
    const char *name;
    topic_kind kind;
    int short_lived; /* request/reply traffic: short retention (deadlines are seconds) */
} millom_topic;

/* Every topic above, ending with {NULL}. */
extern const millom_topic millom_topics[];

#endif
