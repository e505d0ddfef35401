/* Every Kafka topic Millom uses, named once. Programs use these names;
 * devbroker creates the topics from millom_topics[]; and
 * docker/create-topics.sh (which runs inside the Kafka image, without
 * Millom's programs) is checked against the table by
 * tests/unit/test_shared_topics.c.
 *
 * Who writes and who reads each topic is in the README's "Kafka topics". */
#ifndef SHARED_TOPICS_H
#define SHARED_TOPICS_H

/* Requests and commands: consumed by one service, each with a <topic>.dlq. */
#define TOPIC_QUERIES "millom.queries" /* api-edge, notifier -> offer-resolver */
#define TOPIC_PURCHASE_COMMANDS "millom.purchase.commands"       /* api-edge -> purchase-executor */
#define TOPIC_ACTIVATION_CALLBACKS "millom.activation.callbacks" /* api-edge -> purchase-executor */
#define TOPIC_PURCHASE_LOOKUPS "millom.purchase.lookups"         /* api-edge -> purchase-executor */
#define TOPIC_CONSENTS "millom.consents"                         /* api-edge -> notifier */
#define TOPIC_CPID_REGISTRATIONS "millom.cpid.registrations"     /* api-edge -> notifier */
#define TOPIC_CONSENT_QUERIES "millom.consent.queries"           /* api-edge -> notifier */
#define TOPIC_SETTLEMENT_QUERIES "millom.settlement.queries" /* api-edge -> settlement-reporter */
/* Events: consumed too, each with a <topic>.dlq. */
#define TOPIC_SUBSCRIBER_EVENTS "millom.subscriber.events" /* operators, api-edge -> notifier */
#define TOPIC_PURCHASE_EVENTS \
    "millom.purchase.events" /* purchase-executor -> offer-resolver, notifier, settlement */
#define TOPIC_OFFER_IMPRESSIONS \
    "millom.offer.impressions" /* offer-resolver -> settlement-reporter */
/* Outputs nobody inside Millom consumes as work. */
#define TOPIC_REPLIES "millom.replies" /* every service -> api-edge (shared/patterns/rpc.h) */
#define TOPIC_SETTLEMENT_RECORDS "millom.settlement.records" /* settlement-reporter -> analysts */
#define TOPIC_SETTLEMENT_REPORTS \
    "millom.settlement.reports" /* settlement-reporter -> analysts (compacted) */
#define TOPIC_NOTIFICATIONS_DLQ "millom.notifications.dlq" /* notifier: deliveries that gave up */
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
