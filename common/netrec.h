/* netrec.h - the network journal of `coord run --record-net` (shared by
 * the shim, which writes it, and coord, which replays it).
 *
 * The shim appends one record per event to DIR/net-<epoch>.journal, with
 * one write() each (O_APPEND): a record is never torn by another thread's
 * or process's record. epoch is the counter stamp of the last checkpoint
 * the process took (0 before the first): every byte read after that
 * checkpoint is in the journal of its stamp. docs/DESIGN.md "Network
 * record and replay". */
#ifndef CKSHIM_NETREC_H
#define CKSHIM_NETREC_H

#include <stdint.h>

#define CK_NETREC_MAGIC 0x4345524eu /* "NREC" */
#define CK_NETREC_DIR_ENV "CKSHIM_RECORD_NET"      /* the directory of the journals */
#define CK_NETREC_MAX_ENV "CKSHIM_RECORD_NET_MAX"  /* bytes per journal */
#define CK_NETREC_MAX_DEFAULT (64ull << 20)
#define CK_NETREC_REPLAY_MARK "net.replay"         /* in DIR while a replay runs */

enum {
    CK_NETREC_OPEN = 1,  /* payload: the local address of the connection (sockaddr) */
    CK_NETREC_DATA = 2,  /* payload: bytes the program read */
    CK_NETREC_CLOSE = 3, /* the peer closed (the program read end of file) */
    CK_NETREC_FULL = 4,  /* the journal reached its bound: nothing more recorded */
};

/* CK_NETREC_DATA: these bytes were already waiting in the socket's queue
 * at the checkpoint of this epoch; restoring that very image puts them
 * back in the queue, so its replay skips them. */
#define CK_NETREC_QUEUED 0x1

struct ck_netrec_hdr {
    uint32_t magic;
    uint16_t kind;
    uint16_t flags;
    uint32_t len;   /* payload bytes after the header */
    uint32_t pad;
    uint64_t conn;  /* connection id: (pid at accept << 32) | number */
    uint64_t epoch;
};

#endif
