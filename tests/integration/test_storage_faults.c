/* Storage faults end to end, on small tmpfs mounts the test makes itself
 * (so it needs root; as another user it says so and skips):
 * - settlement-reporter started on a read-only data dir, and on a full
 *   one, exits with status 1 and one clear error line naming the dir and
 *   the cause (no crash, no assert);
 * - settlement-reporter running on a 1 MiB tmpfs that the test then fills:
 *   purchase events keep failing with SQLITE_FULL, so /readyz turns 503,
 *   nothing is settled and nothing is dead-lettered (the messages stay
 *   uncommitted and are retried); once the filler file is removed the
 *   service becomes ready again and settles every one of them.
 * Every mount is undone on every path (after the stack stopped, so no
 * process holds a file there). Waits are bounded polls, never timings. */
#include "tests/lib/stack.h"

#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shared/plumbing/kafka.h"
#include "shared/plumbing/service.h"
#include "millom/v1/purchase.pb-c.h"

#define BASE_PORT 19480
#define SP "testserviceprovider"
#define N_EVENTS 5

static test_stack stack;
static char mounts_dir[128]; /* holds the three mount points */
static char ro_dir[160], full_dir[160], run_dir[160];
static char settlement_admin[64];
static kafka_producer *producer;

/* Mounts a tmpfs of `size` ("64k") on dir, read-only if ro; 0 or errno. */
static int mount_tmpfs(const char *dir, const char *size, int ro) {
    char opts[64];
    snprintf(opts, sizeof opts, "size=%s,mode=0755", size);
    if (mount("tmpfs", dir, "tmpfs", ro ? MS_RDONLY : 0, opts) != 0) return errno;
    return 0;
}

/* Unmounts whatever the test mounted (EINVAL: nothing mounted there). */
static void unmount_all(void) {
    const char *dirs[] = {ro_dir, full_dir, run_dir};
    for (size_t i = 0; i < 3; i++) {
        if (!dirs[i][0]) continue;
        if (umount2(dirs[i], 0) != 0 && errno != EINVAL && errno != ENOENT) {
            fprintf(stderr, "umount %s: %s; detaching it\n", dirs[i], strerror(errno));
            umount2(dirs[i], MNT_DETACH);
        }
        rmdir(dirs[i]);
    }
    if (mounts_dir[0]) rmdir(mounts_dir);
}

/* Writes zeros to dir/filler until the file system is full. */
static void fill(const char *dir) {
    char path[256];
    snprintf(path, sizeof path, "%s/filler", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
    static char chunk[4096];
    while (write(fd, chunk, sizeof chunk) > 0) {
    }
    ck_assert_msg(errno == ENOSPC, "filling %s stopped with %s", dir, strerror(errno));
    close(fd);
}

/* The slot of a program in the stack, or -1. */
static int slot_of(const char *name) {
    for (int i = 0; i < stack.n; i++)
        if (strcmp(stack.names[i], name) == 0) return i;
    return -1;
}

/* Starts settlement-reporter as `name` on data_dir and waits (bounded) for
 * it to exit; its wait status. */
static int run_until_exit(const char *name, const char *data_dir) {
    char env_dir[200];
    snprintf(env_dir, sizeof env_dir, "MILLOM_DATA_DIR=%s", data_dir);
    const char *env[] = {env_dir, NULL};
    pid_t pid = stack_spawn_as(&stack, "settlement-reporter", name, env);
    ck_assert_int_gt(pid, 0);
    int status = 0;
    for (int i = 0; i < 1200; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid) {
            stack.pids[slot_of(name)] = 0; /* reaped: stack_stop leaves it */
            return status;
        }
        test_sleep_ms(50);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    stack.pids[slot_of(name)] = 0;
    ck_abort_msg("%s did not exit on an unusable data dir", name);
    return status;
}

/* The error lines of a program's log that are not librdkafka's, and the
 * first of them into first. */
static int error_lines(const char *name, char *first, size_t len) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s.log", stack.dir, name);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char line[2048];
    int n = 0;
    first[0] = '\0';
    while (fgets(line, sizeof line, f)) {
        if (!strstr(line, "\"level\":\"error\"") || strstr(line, "rdkafka")) continue;
        if (n++ == 0) snprintf(first, len, "%s", line);
    }
    fclose(f);
    return n;
}

static void check_refused_start(const char *name, const char *dir, const char *cause) {
    int status = run_until_exit(name, dir);
    ck_assert_msg(WIFEXITED(status), "%s ended by signal %d", name,
                  WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    ck_assert_int_eq(WEXITSTATUS(status), 1);
    char first[2048], want[300];
    ck_assert_int_eq(error_lines(name, first, sizeof first), 1);
    snprintf(want, sizeof want, "data dir %s cannot be written: %s", dir, cause);
    ck_assert_msg(strstr(first, want), "error line %s does not say '%s'", first, want);
}

START_TEST(read_only_data_dir_at_start) {
    ck_assert_int_eq(mount_tmpfs(ro_dir, "64k", 1), 0);
    check_refused_start("settlement-ro", ro_dir, "Read-only file system");
}
END_TEST

START_TEST(full_data_dir_at_start) {
    ck_assert_int_eq(mount_tmpfs(full_dir, "64k", 0), 0);
    fill(full_dir);
    check_refused_start("settlement-full", full_dir, "No space left on device");
}
END_TEST

static void produce_completed(const char *transid) {
    Millom__V1__PurchaseEvent ev = MILLOM__V1__PURCHASE_EVENT__INIT;
    ev.transid = (char *)transid;
    ev.service_provider = SP;
    ev.operator_ = "tp";
    ev.msisdn = "924542619998";
    ev.plan_id = "tp-social-daily";
    ev.price_minor = 1000;
    ev.currency = "PKR";
    ev.state = MILLOM__V1__PURCHASE_STATE__PURCHASE_STATE_COMPLETED;
    ev.occurred_at_ms = now_ms();
    ev.created_at_ms = ev.occurred_at_ms;
    uint8_t buf[512];
    size_t len = millom__v1__purchase_event__pack(&ev, buf);
    ck_assert_int_eq(kafka_produce(producer, "millom.purchase.events", -1, ev.msisdn,
                                   strlen(ev.msisdn), buf, len, NULL, 0),
                     0);
    ck_assert_int_eq(kafka_producer_flush(producer, 10000), 0);
}

static long settled(void) {
    return test_metric(settlement_admin, "millom_settlement_records_total");
}

/* Polls until settled() == want (1) or the bound passes (0). */
static int wait_settled(long want) {
    for (int i = 0; i < 1200; i++) {
        if (settled() == want) return 1;
        test_sleep_ms(100);
    }
    return 0;
}

static long readyz(void) {
    char url[96];
    snprintf(url, sizeof url, "%s/readyz", settlement_admin);
    test_response r;
    test_http("GET", url, NULL, NULL, &r);
    long status = r.status;
    test_response_free(&r);
    return status;
}

START_TEST(disk_full_while_running_then_freed) {
    /* settlement-reporter again, on its own 1 MiB tmpfs. */
    ck_assert_int_eq(stack_stop_one(&stack, "settlement-reporter"), 0);
    ck_assert_int_eq(mount_tmpfs(run_dir, "1m", 0), 0);
    char env_dir[200];
    snprintf(env_dir, sizeof env_dir, "MILLOM_DATA_DIR=%s", run_dir);
    const char *env[] = {env_dir, "MILLOM_STORE_ERROR_READY_S=3", NULL};
    ck_assert_int_gt(stack_respawn_in_place(&stack, "settlement-reporter", env), 0);
    ck_assert_int_eq(stack_wait_ready(stack.settlement_port, 60000), 0);

    char tid[64];
    snprintf(tid, sizeof tid, "storage-ok-%ld", (long)getpid());
    produce_completed(tid);
    ck_assert_msg(wait_settled(1), "the first event was not settled");

    fill(run_dir);
    for (int i = 0; i < N_EVENTS; i++) {
        snprintf(tid, sizeof tid, "storage-full-%ld-%d", (long)getpid(), i);
        produce_completed(tid);
    }
    int not_ready = 0;
    for (int i = 0; i < 600 && !not_ready; i++) {
        not_ready = readyz() == 503;
        if (!not_ready) test_sleep_ms(100);
    }
    ck_assert_msg(not_ready, "settlement-reporter stayed ready on a full disk");
    /* Still not ready a while later (the retries keep failing), and nothing
     * was settled or dead-lettered meanwhile. */
    test_sleep_ms(2000);
    ck_assert_int_eq(readyz(), 503);
    ck_assert_int_eq(settled(), 1);
    ck_assert_int_eq(
        test_metric_sum(settlement_admin, "millom_kafka_dlq_total", "millom.purchase.events"), 0);

    char filler[256];
    snprintf(filler, sizeof filler, "%s/filler", run_dir);
    ck_assert_int_eq(unlink(filler), 0);
    ck_assert_msg(stack_wait_ready(stack.settlement_port, 90000) == 0,
                  "settlement-reporter not ready after the disk was freed");
    ck_assert_msg(wait_settled(1 + N_EVENTS), "only %ld of %d events settled after recovery",
                  settled(), 1 + N_EVENTS);
    ck_assert_int_eq(
        test_metric_sum(settlement_admin, "millom_kafka_dlq_total", "millom.purchase.events"), 0);
}
END_TEST

int main(void) {
    if (geteuid() != 0) {
        printf("test_storage_faults: SKIPPED: mounting a tmpfs needs root (CI runs as root)\n");
        return 0;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    snprintf(mounts_dir, sizeof mounts_dir, "/tmp/millom-storage-XXXXXX");
    if (!mkdtemp(mounts_dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(ro_dir, sizeof ro_dir, "%s/ro", mounts_dir);
    snprintf(full_dir, sizeof full_dir, "%s/full", mounts_dir);
    snprintf(run_dir, sizeof run_dir, "%s/run", mounts_dir);
    if (mkdir(ro_dir, 0755) || mkdir(full_dir, 0755) || mkdir(run_dir, 0755)) {
        perror("mkdir");
        unmount_all();
        return 1;
    }
    /* Can this process mount at all (a container without CAP_SYS_ADMIN)? */
    int e = mount_tmpfs(run_dir, "64k", 0);
    if (e) {
        fprintf(stderr, "test_storage_faults: FAILED: cannot mount a tmpfs as root: %s\n",
                strerror(e));
        unmount_all();
        return 1;
    }
    umount2(run_dir, 0);

    if (stack_start(&stack, BASE_PORT, NULL) != 0) {
        fprintf(stderr, "stack did not start\n");
        stack_stop(&stack);
        unmount_all();
        return 1;
    }
    snprintf(settlement_admin, sizeof settlement_admin, "http://127.0.0.1:%d",
             stack.settlement_port);
    char err[256];
    producer = kafka_producer_new("storage-faults-test", 0, err, sizeof err);
    if (!producer) {
        fprintf(stderr, "producer: %s\n", err);
        stack_stop(&stack);
        unmount_all();
        return 1;
    }

    Suite *s = suite_create("storage_faults");
    TCase *tc = tcase_create("stack");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, read_only_data_dir_at_start);
    tcase_add_test(tc, full_data_dir_at_start);
    tcase_add_test(tc, disk_full_while_running_then_freed);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    kafka_producer_free(producer);
    int bad_exit = stack_stop(&stack); /* no process holds a file on the mounts now */
    unmount_all();
    curl_global_cleanup();
    return failed || bad_exit ? 1 : 0;
}
