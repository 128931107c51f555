/* heap - malloc'd memory survives a checkpoint and malloc keeps working.
 *
 * Builds a 20,000-node singly linked list of malloc'd nodes of varying size
 * (small ones come from [heap]/brk, the rest from the arena), with holes
 * left by freed nodes, plus three big calloc'd arrays (mmap'd by malloc)
 * that are partly filled with patterns and partly left zero. After restore:
 * every node and array byte is as written, and malloc/realloc/free still
 * work, including 100 MB more (touched, checked, freed) and many small
 * allocations (brk may or may not be usable after restore; malloc must cope).
 */
#include "testlib.h"

#define NNODES 20000

struct node {
    struct node *next;
    uint32_t idx;
    uint32_t len;
    unsigned char data[];
};

static struct node *head;
static unsigned char *arr[3];
static const size_t arr_len[3] = { 8 << 20, 32 << 20, 64 << 20 };

static size_t node_len(uint32_t i)
{
    return 8 + (i * 37) % 1000;
}

/* Pages 0,3,6,... of each array hold a pattern; the rest stay zero. */
static void fill_arrays(void)
{
    for (int a = 0; a < 3; a++) {
        arr[a] = calloc(arr_len[a], 1);
        check(arr[a], "calloc %zu failed", arr_len[a]);
        for (size_t off = 0; off < arr_len[a]; off += 3 * 4096)
            test_fill(arr[a] + off, 4096, (uint64_t)a << 32 | off);
    }
}

static void check_arrays(void)
{
    for (int a = 0; a < 3; a++) {
        for (size_t off = 0; off < arr_len[a]; off += 4096) {
            long bad;
            if ((off / 4096) % 3 == 0)
                bad = test_check_fill(arr[a] + off, 4096, (uint64_t)a << 32 | off);
            else
                bad = test_check_zero(arr[a] + off, 4096);
            check(bad < 0, "array %d differs at byte %zu", a, off + bad);
        }
    }
}

static void build_list(void)
{
    struct node **tail = &head;
    struct node *junk[NNODES / 4];
    int nj = 0;

    for (uint32_t i = 0; i < NNODES; i++) {
        size_t len = node_len(i);
        struct node *n = malloc(sizeof(*n) + len);
        check(n, "malloc node %u failed", i);
        n->next = NULL;
        n->idx = i;
        n->len = len;
        test_fill(n->data, len, i);
        *tail = n;
        tail = &n->next;
        if (i % 4 == 0 && nj < NNODES / 4) /* interleave garbage to free */
            junk[nj++] = malloc(64 + i % 200);
    }
    for (int j = 0; j < nj; j += 2)
        free(junk[j]);
}

static void check_list(void)
{
    uint32_t i = 0;
    for (struct node *n = head; n; n = n->next, i++) {
        check(n->idx == i, "node %u has index %u", i, n->idx);
        check(n->len == node_len(i), "node %u has length %u", i, n->len);
        long bad = test_check_fill(n->data, n->len, i);
        check(bad < 0, "node %u data differs at byte %ld", i, bad);
    }
    check(i == NNODES, "list has %u nodes, expected %d", i, NNODES);
}

static void check_malloc_works(void)
{
    /* 100 MB more, touched and checked */
    size_t big = 100 << 20;
    unsigned char *p = malloc(big);
    check(p, "malloc(100 MB) after restore failed");
    for (size_t off = 0; off < big; off += 4096)
        p[off] = (unsigned char)(off >> 12);
    for (size_t off = 0; off < big; off += 4096)
        check(p[off] == (unsigned char)(off >> 12), "100 MB block broken at %zu", off);
    free(p);

    /* many small ones (brk or arena), realloc of an old node */
    void *small[5000];
    for (int i = 0; i < 5000; i++) {
        small[i] = malloc(16 + i % 500);
        check(small[i], "small malloc %d failed", i);
        memset(small[i], i & 0xff, 16 + i % 500);
    }
    for (int i = 0; i < 5000; i++) {
        unsigned char *q = small[i];
        check(q[0] == (i & 0xff) && q[15 + i % 500] == (i & 0xff),
              "small block %d corrupted", i);
        free(small[i]);
    }
    struct node *second = head->next;
    struct node *r = realloc(second, sizeof(*r) + second->len + 100000);
    check(r, "realloc of an old node failed");
    check(test_check_fill(r->data, r->len, 1) < 0, "realloc lost node data");
    head->next = r;
}

int main(void)
{
    build_list();
    fill_arrays();
    test_ready();

    /* light work: small malloc/free churn while waiting */
    while (!test_go_reached()) {
        void *p = malloc(100);
        memset(p, 1, 100);
        free(p);
        usleep(20000);
    }

    check_list();
    check_arrays();
    check_malloc_works();
    check_list();
    pass();
}
