/*
 * SHA-256 and MD5 of many buffers at once: one buffer per 32-bit lane of an AVX-512
 * register, sixteen at a time ("multi-buffer" hashing, as in Intel ISA-L crypto and
 * MinIO's sha256-simd / md5-simd).
 *
 * Why: replication checks every object against its SHA-256 name before it leaves and sends
 * S3 a Content-MD5 for every PUT. On CPUs without SHA instructions OpenSSL hashes one
 * stream at ~300 MB/s (SHA-256) and ~550 MB/s (MD5), which made the hashes, not the
 * network, the cost of a full replication on a two-core host. Independent buffers hashed in
 * lanes cost about the same instructions per block as one, so N buffers go ~N times faster.
 *
 * Only whole 64-byte blocks run in lanes; each buffer's tail (padding and length) is
 * finished by the plain scalar compression below. FileLanes (further down) hashes whole files
 * the same way for backup and restore. Results are checked against hashlib by
 * tests/backup/test_digests.py and tests/backup/test_filehasher.py for every tail length.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_LANES 1
#else
#define HAVE_LANES 0
#endif

#define LANES 16

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static const uint32_t SHA256_IV[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                      0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
static const uint32_t MD5_IV[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};

static const uint32_t MD5K[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391};
static const int MD5R[64] = {7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
                             5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20,
                             4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
                             6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21};

/* ---- scalar compression (tails, and the reference the lanes must agree with) ---------- */

#define ROR32(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
#define ROL32(x, n) (((x) << (n)) | ((x) >> (32 - (n))))

static void sha256_block(uint32_t st[8], const uint8_t *p) {
    uint32_t w[64];
    for (int t = 0; t < 16; t++)
        w[t] = ((uint32_t)p[4 * t] << 24) | ((uint32_t)p[4 * t + 1] << 16) | ((uint32_t)p[4 * t + 2] << 8) |
               (uint32_t)p[4 * t + 3];
    for (int t = 16; t < 64; t++) {
        uint32_t s0 = ROR32(w[t - 15], 7) ^ ROR32(w[t - 15], 18) ^ (w[t - 15] >> 3);
        uint32_t s1 = ROR32(w[t - 2], 17) ^ ROR32(w[t - 2], 19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    uint32_t a = st[0], b = st[1], c = st[2], d = st[3], e = st[4], f = st[5], g = st[6], h = st[7];
    for (int t = 0; t < 64; t++) {
        uint32_t t1 = h + (ROR32(e, 6) ^ ROR32(e, 11) ^ ROR32(e, 25)) + ((e & f) ^ (~e & g)) + K256[t] + w[t];
        uint32_t t2 = (ROR32(a, 2) ^ ROR32(a, 13) ^ ROR32(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    st[0] += a; st[1] += b; st[2] += c; st[3] += d; st[4] += e; st[5] += f; st[6] += g; st[7] += h;
}

static void md5_block(uint32_t st[4], const uint8_t *p) {
    uint32_t m[16];
    for (int t = 0; t < 16; t++)
        m[t] = (uint32_t)p[4 * t] | ((uint32_t)p[4 * t + 1] << 8) | ((uint32_t)p[4 * t + 2] << 16) |
               ((uint32_t)p[4 * t + 3] << 24);
    uint32_t a = st[0], b = st[1], c = st[2], d = st[3];
    for (int i = 0; i < 64; i++) {
        uint32_t f;
        int g;
        if (i < 16) { f = (b & c) | (~b & d); g = i; }
        else if (i < 32) { f = (d & b) | (~d & c); g = (5 * i + 1) & 15; }
        else if (i < 48) { f = b ^ c ^ d; g = (3 * i + 5) & 15; }
        else { f = c ^ (b | ~d); g = (7 * i) & 15; }
        uint32_t tmp = d;
        d = c; c = b;
        b = b + ROL32(a + f + MD5K[i] + m[g], MD5R[i]);
        a = tmp;
    }
    st[0] += a; st[1] += b; st[2] += c; st[3] += d;
}

/* The padded tail (one or two blocks) of a ``len``-byte message whose last ``len % 64``
 * bytes are at ``last``; every whole block before them is already in the state. */
static void finish_tail(uint32_t sha[8], uint32_t md5[4], const uint8_t *last, uint64_t len, int want_sha,
                        int want_md5) {
    uint8_t tail[128];
    size_t rest = (size_t)(len & 63);
    memset(tail, 0, sizeof tail);
    memcpy(tail, last, rest);
    tail[rest] = 0x80;
    size_t blocks = rest < 56 ? 1 : 2;
    uint64_t bits = (uint64_t)len * 8;
    uint8_t *sha_len = tail + 64 * blocks - 8;
    if (want_sha) {
        for (int i = 0; i < 8; i++) sha_len[i] = (uint8_t)(bits >> (56 - 8 * i));
        for (size_t b = 0; b < blocks; b++) sha256_block(sha, tail + 64 * b);
    }
    if (want_md5) {
        for (int i = 0; i < 8; i++) sha_len[i] = (uint8_t)(bits >> (8 * i));
        for (size_t b = 0; b < blocks; b++) md5_block(md5, tail + 64 * b);
    }
}

/* The padded tail after the whole blocks of a ``len``-byte message at ``data``. */
static void finish(uint32_t sha[8], uint32_t md5[4], const uint8_t *data, size_t len, int want_sha, int want_md5) {
    finish_tail(sha, md5, data + (len & ~(size_t)63), len, want_sha, want_md5);
}

/* ---- sixteen lanes ---------------------------------------------------------------------- */

#if HAVE_LANES
#define LANE_TARGET __attribute__((target("avx512f,avx512bw")))

#define V __m512i
#define ADD(a, b) _mm512_add_epi32((a), (b))
#define ROR(x, n) _mm512_ror_epi32((x), (n))
#define ROL(x, n) _mm512_rol_epi32((x), (n))
#define XOR3(a, b, c) _mm512_ternarylogic_epi32((a), (b), (c), 0x96)
#define SEL(a, b, c) _mm512_ternarylogic_epi32((a), (b), (c), 0xca) /* a ? b : c */
#define MAJ(a, b, c) _mm512_ternarylogic_epi32((a), (b), (c), 0xe8)
#define MD5I(b, c, d) _mm512_ternarylogic_epi32((b), (c), (d), 0x39) /* c ^ (b | ~d) */
#define K(x) _mm512_set1_epi32((int)(x))

#define MD5_STEP(fn, a, b, c, d, i, g)                                                    \
    a = ADD(b, ROL(ADD(ADD(a, fn), ADD(m[g], K(MD5K[i]))), MD5R_##i))

/* MD5 rotation amounts as compile-time constants (the rotate intrinsic takes an immediate) */
enum {
    MD5R_0 = 7, MD5R_1 = 12, MD5R_2 = 17, MD5R_3 = 22, MD5R_4 = 7, MD5R_5 = 12, MD5R_6 = 17, MD5R_7 = 22,
    MD5R_8 = 7, MD5R_9 = 12, MD5R_10 = 17, MD5R_11 = 22, MD5R_12 = 7, MD5R_13 = 12, MD5R_14 = 17, MD5R_15 = 22,
    MD5R_16 = 5, MD5R_17 = 9, MD5R_18 = 14, MD5R_19 = 20, MD5R_20 = 5, MD5R_21 = 9, MD5R_22 = 14, MD5R_23 = 20,
    MD5R_24 = 5, MD5R_25 = 9, MD5R_26 = 14, MD5R_27 = 20, MD5R_28 = 5, MD5R_29 = 9, MD5R_30 = 14, MD5R_31 = 20,
    MD5R_32 = 4, MD5R_33 = 11, MD5R_34 = 16, MD5R_35 = 23, MD5R_36 = 4, MD5R_37 = 11, MD5R_38 = 16, MD5R_39 = 23,
    MD5R_40 = 4, MD5R_41 = 11, MD5R_42 = 16, MD5R_43 = 23, MD5R_44 = 4, MD5R_45 = 11, MD5R_46 = 16, MD5R_47 = 23,
    MD5R_48 = 6, MD5R_49 = 10, MD5R_50 = 15, MD5R_51 = 21, MD5R_52 = 6, MD5R_53 = 10, MD5R_54 = 15, MD5R_55 = 21,
    MD5R_56 = 6, MD5R_57 = 10, MD5R_58 = 15, MD5R_59 = 21, MD5R_60 = 6, MD5R_61 = 10, MD5R_62 = 15, MD5R_63 = 21,
};

LANE_TARGET static inline void md5_lanes(V st[4], const V m[16]) {
    V a = st[0], b = st[1], c = st[2], d = st[3];
#define R1(i) { MD5_STEP(SEL(b, c, d), a, b, c, d, i, (i)); V t_ = d; d = c; c = b; b = a; a = t_; }
#define R2(i) { MD5_STEP(SEL(d, b, c), a, b, c, d, i, ((5 * (i) + 1) & 15)); V t_ = d; d = c; c = b; b = a; a = t_; }
#define R3(i) { MD5_STEP(XOR3(b, c, d), a, b, c, d, i, ((3 * (i) + 5) & 15)); V t_ = d; d = c; c = b; b = a; a = t_; }
#define R4(i) { MD5_STEP(MD5I(b, c, d), a, b, c, d, i, ((7 * (i)) & 15)); V t_ = d; d = c; c = b; b = a; a = t_; }
    R1(0) R1(1) R1(2) R1(3) R1(4) R1(5) R1(6) R1(7) R1(8) R1(9) R1(10) R1(11) R1(12) R1(13) R1(14) R1(15)
    R2(16) R2(17) R2(18) R2(19) R2(20) R2(21) R2(22) R2(23) R2(24) R2(25) R2(26) R2(27) R2(28) R2(29) R2(30) R2(31)
    R3(32) R3(33) R3(34) R3(35) R3(36) R3(37) R3(38) R3(39) R3(40) R3(41) R3(42) R3(43) R3(44) R3(45) R3(46) R3(47)
    R4(48) R4(49) R4(50) R4(51) R4(52) R4(53) R4(54) R4(55) R4(56) R4(57) R4(58) R4(59) R4(60) R4(61) R4(62) R4(63)
#undef R1
#undef R2
#undef R3
#undef R4
    st[0] = ADD(st[0], a); st[1] = ADD(st[1], b); st[2] = ADD(st[2], c); st[3] = ADD(st[3], d);
}

LANE_TARGET static inline void sha256_lanes(V st[8], V w[16]) {
    V a = st[0], b = st[1], c = st[2], d = st[3], e = st[4], f = st[5], g = st[6], h = st[7];
    for (int t = 0; t < 64; t++) {
        V wt;
        if (t < 16) {
            wt = w[t];
        } else {
            V w15 = w[(t - 15) & 15], w2 = w[(t - 2) & 15];
            V s0 = XOR3(ROR(w15, 7), ROR(w15, 18), _mm512_srli_epi32(w15, 3));
            V s1 = XOR3(ROR(w2, 17), ROR(w2, 19), _mm512_srli_epi32(w2, 10));
            wt = ADD(ADD(w[t & 15], s0), ADD(w[(t - 7) & 15], s1));
            w[t & 15] = wt;
        }
        V t1 = ADD(ADD(h, XOR3(ROR(e, 6), ROR(e, 11), ROR(e, 25))), ADD(SEL(e, f, g), ADD(K(K256[t]), wt)));
        V t2 = ADD(XOR3(ROR(a, 2), ROR(a, 13), ROR(a, 22)), MAJ(a, b, c));
        h = g; g = f; f = e; e = ADD(d, t1); d = c; c = b; b = a; a = ADD(t1, t2);
    }
    st[0] = ADD(st[0], a); st[1] = ADD(st[1], b); st[2] = ADD(st[2], c); st[3] = ADD(st[3], d);
    st[4] = ADD(st[4], e); st[5] = ADD(st[5], f); st[6] = ADD(st[6], g); st[7] = ADD(st[7], h);
}

/* Turn sixteen rows (one 64-byte block per lane) into sixteen columns (word t of every lane):
 * 64 in-register shuffles. Loading each lane's block whole and transposing runs ~1.4x
 * faster per block than gathering word t of every lane (32 gathers a block) did. */
LANE_TARGET static inline void transpose16(V r[16]) {
    V t[16], u[16];
    for (int i = 0; i < 16; i += 2) { /* per 128-bit quarter: dwords of row pairs interleaved */
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int g = 0; g < 16; g += 4) { /* u[g + p], quarter q: word 4q + p of rows g..g+3 */
        u[g] = _mm512_unpacklo_epi64(t[g], t[g + 2]);
        u[g + 1] = _mm512_unpackhi_epi64(t[g], t[g + 2]);
        u[g + 2] = _mm512_unpacklo_epi64(t[g + 1], t[g + 3]);
        u[g + 3] = _mm512_unpackhi_epi64(t[g + 1], t[g + 3]);
    }
    for (int p = 0; p < 4; p++) { /* a 4x4 transpose of quarters among u[p], u[4+p], u[8+p], u[12+p] */
        V x0 = _mm512_shuffle_i32x4(u[p], u[4 + p], 0x44), x1 = _mm512_shuffle_i32x4(u[p], u[4 + p], 0xEE);
        V y0 = _mm512_shuffle_i32x4(u[8 + p], u[12 + p], 0x44), y1 = _mm512_shuffle_i32x4(u[8 + p], u[12 + p], 0xEE);
        r[p] = _mm512_shuffle_i32x4(x0, y0, 0x88);
        r[4 + p] = _mm512_shuffle_i32x4(x0, y0, 0xDD);
        r[8 + p] = _mm512_shuffle_i32x4(x1, y1, 0x88);
        r[12 + p] = _mm512_shuffle_i32x4(x1, y1, 0xDD);
    }
}

/* ``blocks`` whole blocks from every lane; a lane with stride 0 re-reads its dummy block. */
LANE_TARGET static void run_lanes(uint32_t sha[8][LANES], uint32_t md5[4][LANES], const uint8_t *ptr[LANES],
                                  const uint8_t stride[LANES], size_t blocks, int want_sha, int want_md5) {
    V s[8], m5[4];
    for (int i = 0; i < 8; i++) s[i] = _mm512_loadu_si512(sha[i]);
    for (int i = 0; i < 4; i++) m5[i] = _mm512_loadu_si512(md5[i]);
    const uint8_t *at[LANES];
    size_t step[LANES];
    for (int l = 0; l < LANES; l++) {
        at[l] = ptr[l];
        step[l] = stride[l];
    }
    const V bswap = _mm512_set_epi8(12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10,
                                    11, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3,
                                    12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3);
    for (size_t blk = 0; blk < blocks; blk++) {
        V m[16];
        for (int l = 0; l < LANES; l++) {
            m[l] = _mm512_loadu_si512(at[l]);
            at[l] += step[l];
        }
        transpose16(m);
        if (want_md5) md5_lanes(m5, m);
        if (want_sha) {
            for (int t = 0; t < 16; t++) m[t] = _mm512_shuffle_epi8(m[t], bswap);
            sha256_lanes(s, m);
        }
    }
    for (int i = 0; i < 8; i++) _mm512_storeu_si512(sha[i], s[i]);
    for (int i = 0; i < 4; i++) _mm512_storeu_si512(md5[i], m5[i]);
}

static int lanes_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
}
#else
static int lanes_supported(void) { return 0; }
#endif

/* ---- scheduling buffers onto lanes -------------------------------------------------------- */

typedef struct {
    const uint8_t *data;
    size_t len;
    uint8_t sha[32];
    uint8_t md5[16];
} job_t;

/* A SHA-256 state as the digest's big-endian bytes. */
static void store_sha256(uint8_t out[32], const uint32_t sha[8]) {
    for (int i = 0; i < 8; i++)
        for (int k = 0; k < 4; k++) out[4 * i + k] = (uint8_t)(sha[i] >> (24 - 8 * k));
}

static void store_digests(job_t *job, const uint32_t sha[8], const uint32_t md5[4]) {
    store_sha256(job->sha, sha);
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 4; k++) job->md5[4 * i + k] = (uint8_t)(md5[i] >> (8 * k));
}

static void hash_one(job_t *job, int want_sha, int want_md5) {
    uint32_t sha[8], md5[4];
    memcpy(sha, SHA256_IV, sizeof sha);
    memcpy(md5, MD5_IV, sizeof md5);
    size_t full = job->len / 64;
    for (size_t b = 0; b < full; b++) {
        if (want_sha) sha256_block(sha, job->data + 64 * b);
        if (want_md5) md5_block(md5, job->data + 64 * b);
    }
    finish(sha, md5, job->data, job->len, want_sha, want_md5);
    store_digests(job, sha, md5);
}

#if HAVE_LANES
static const uint8_t IDLE_BLOCK[64];

static void hash_lanes(job_t *jobs, size_t n, int want_sha, int want_md5) {
    uint32_t sha[8][LANES], md5[4][LANES];
    const uint8_t *ptr[LANES];
    uint8_t stride[LANES];
    size_t left[LANES];
    long owner[LANES];
    size_t next = 0;
    for (int l = 0; l < LANES; l++) { owner[l] = -1; ptr[l] = IDLE_BLOCK; stride[l] = 0; left[l] = 0; }
    for (;;) {
        int active = 0;
        for (int l = 0; l < LANES; l++) {
            while (owner[l] < 0 && next < n) {
                job_t *job = &jobs[next];
                if (job->len < 64) { /* nothing for the lanes to do */
                    hash_one(job, want_sha, want_md5);
                    next++;
                    continue;
                }
                owner[l] = (long)next++;
                for (int i = 0; i < 8; i++) sha[i][l] = SHA256_IV[i];
                for (int i = 0; i < 4; i++) md5[i][l] = MD5_IV[i];
                ptr[l] = job->data;
                stride[l] = 64;
                left[l] = job->len / 64;
            }
            if (owner[l] >= 0) active++;
        }
        if (!active) return;
        size_t blocks = SIZE_MAX;
        for (int l = 0; l < LANES; l++)
            if (owner[l] >= 0 && left[l] < blocks) blocks = left[l];
        run_lanes(sha, md5, ptr, stride, blocks, want_sha, want_md5);
        for (int l = 0; l < LANES; l++) {
            if (owner[l] < 0) continue;
            ptr[l] += 64 * blocks;
            left[l] -= blocks;
            if (left[l]) continue;
            job_t *job = &jobs[owner[l]];
            uint32_t s[8], m[4];
            for (int i = 0; i < 8; i++) s[i] = sha[i][l];
            for (int i = 0; i < 4; i++) m[i] = md5[i][l];
            finish(s, m, job->data, job->len, want_sha, want_md5);
            store_digests(job, s, m);
            owner[l] = -1;
            ptr[l] = IDLE_BLOCK;
            stride[l] = 0;
        }
    }
}
#endif

static int LANES_OK = 0;

/* digests(buffers, sha256=True, md5=True) -> list of (sha256 | None, md5 | None) */
static PyObject *digests(PyObject *self, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"buffers", "sha256", "md5", "lanes", NULL};
    PyObject *seq_in;
    int want_sha = 1, want_md5 = 1, use_lanes = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|ppp", kwlist, &seq_in, &want_sha, &want_md5, &use_lanes))
        return NULL;
    PyObject *seq = PySequence_Fast(seq_in, "buffers must be a sequence of bytes-like objects");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    Py_buffer *views = PyMem_Calloc((size_t)n + 1, sizeof(Py_buffer));
    job_t *jobs = PyMem_Calloc((size_t)n + 1, sizeof(job_t));
    PyObject *result = NULL;
    Py_ssize_t held = 0;
    if (!views || !jobs) { PyErr_NoMemory(); goto done; }
    for (; held < n; held++) {
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(seq, held), &views[held], PyBUF_SIMPLE) < 0) goto done;
        jobs[held].data = views[held].buf;
        jobs[held].len = (size_t)views[held].len;
    }
    Py_BEGIN_ALLOW_THREADS
#if HAVE_LANES
    if (use_lanes && LANES_OK && n > 1)
        hash_lanes(jobs, (size_t)n, want_sha, want_md5);
    else
#endif
        for (Py_ssize_t i = 0; i < n; i++) hash_one(&jobs[i], want_sha, want_md5);
    Py_END_ALLOW_THREADS
    result = PyList_New(n);
    if (!result) goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *sha = want_sha ? PyBytes_FromStringAndSize((const char *)jobs[i].sha, 32) : Py_NewRef(Py_None);
        PyObject *md5 = want_md5 ? PyBytes_FromStringAndSize((const char *)jobs[i].md5, 16) : Py_NewRef(Py_None);
        PyObject *pair = (sha && md5) ? PyTuple_Pack(2, sha, md5) : NULL;
        Py_XDECREF(sha);
        Py_XDECREF(md5);
        if (!pair) { Py_CLEAR(result); goto done; }
        PyList_SET_ITEM(result, i, pair);
    }
done:
    for (Py_ssize_t i = 0; i < held; i++) PyBuffer_Release(&views[i]);
    PyMem_Free(views);
    PyMem_Free(jobs);
    Py_DECREF(seq);
    return result;
}

/* ---- files in lanes ----------------------------------------------------------------------
 *
 * FileLanes hashes up to sixteen open files at once, reading each in segments with pread so
 * memory stays at sixteen segments however large the files are. A lane whose file ends takes
 * the caller's next file at the next run(), so the lanes stay busy while files keep coming.
 * One thread at a time: run() releases the GIL, and add() refuses while a run is under way.
 */

typedef struct {
    int fd;           /* -1: the lane is free */
    PyObject *key;    /* the caller's token, returned with the digest */
    uint8_t *buf;     /* one segment */
    size_t have, pos; /* bytes in buf, bytes of them hashed */
    uint64_t total;   /* bytes read from the file so far */
    int eof, err, done;
    uint8_t sha[32];
} file_lane_t;

typedef struct {
    PyObject_HEAD
    size_t segment;
    int busy;
    file_lane_t lane[LANES];
    uint32_t sha[8][LANES];
    uint32_t md5[4][LANES];
} FileLanesObject;

static int FileLanes_init(FileLanesObject *self, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"segment", NULL};
    Py_ssize_t segment = 256 * 1024;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|n", kwlist, &segment)) return -1;
    if (segment < 64 || segment % 64) {
        PyErr_SetString(PyExc_ValueError, "segment must be a positive multiple of 64 bytes");
        return -1;
    }
    if (!LANES_OK) {
        PyErr_SetString(PyExc_RuntimeError, "this CPU has no AVX-512 lanes");
        return -1;
    }
    self->segment = (size_t)segment;
    for (int l = 0; l < LANES; l++) self->lane[l].fd = -1;
    return 0;
}

static void FileLanes_dealloc(FileLanesObject *self) {
    for (int l = 0; l < LANES; l++) {
        Py_XDECREF(self->lane[l].key);
        PyMem_RawFree(self->lane[l].buf);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *FileLanes_add(FileLanesObject *self, PyObject *args) {
    int fd;
    PyObject *key;
    if (!PyArg_ParseTuple(args, "iO", &fd, &key)) return NULL;
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "FileLanes is running in another thread");
        return NULL;
    }
    for (int l = 0; l < LANES; l++) {
        file_lane_t *lane = &self->lane[l];
        if (lane->fd >= 0) continue;
        if (!lane->buf && !(lane->buf = PyMem_RawMalloc(self->segment))) return PyErr_NoMemory();
        lane->fd = fd;
        lane->key = Py_NewRef(key);
        lane->have = lane->pos = 0;
        lane->total = 0;
        lane->eof = lane->err = lane->done = 0;
        for (int i = 0; i < 8; i++) self->sha[i][l] = SHA256_IV[i];
        Py_RETURN_NONE;
    }
    PyErr_SetString(PyExc_RuntimeError, "every lane is busy");
    return NULL;
}

static PyObject *FileLanes_free(FileLanesObject *self, PyObject *Py_UNUSED(ignored)) {
    long free_lanes = 0;
    for (int l = 0; l < LANES; l++) free_lanes += self->lane[l].fd < 0;
    return PyLong_FromLong(free_lanes);
}

static void fill_lane(file_lane_t *lane, size_t segment) {
    lane->have = lane->pos = 0;
    while (lane->have < segment) {
        ssize_t got = pread(lane->fd, lane->buf + lane->have, segment - lane->have, (off_t)lane->total);
        if (got < 0) {
            if (errno == EINTR) continue;
            lane->err = errno;
            return;
        }
        if (got == 0) {
            lane->eof = 1;
            return;
        }
        lane->have += (size_t)got;
        lane->total += (uint64_t)got;
    }
}

#if HAVE_LANES
/* Hash until a lane's file ends (or fails) or ``budget`` bytes per lane have passed. */
static void run_files(FileLanesObject *self, uint64_t budget) {
    uint64_t spent = 0;
    for (;;) {
        int active = 0, finished = 0;
        for (int l = 0; l < LANES; l++) {
            file_lane_t *lane = &self->lane[l];
            if (lane->fd < 0 || lane->done) continue;
            if (lane->pos == lane->have && !lane->eof && !lane->err) fill_lane(lane, self->segment);
            if (lane->err || (lane->eof && lane->have - lane->pos < 64)) {
                if (!lane->err) {
                    uint32_t st[8], unused[4];
                    for (int i = 0; i < 8; i++) st[i] = self->sha[i][l];
                    finish_tail(st, unused, lane->buf + lane->pos, lane->total, 1, 0);
                    store_sha256(lane->sha, st);
                }
                lane->done = 1;
                finished++;
                continue;
            }
            active++;
        }
        if (finished || !active || spent >= budget) return;
        const uint8_t *ptr[LANES];
        uint8_t stride[LANES];
        size_t blocks = SIZE_MAX;
        for (int l = 0; l < LANES; l++) {
            file_lane_t *lane = &self->lane[l];
            int busy = lane->fd >= 0 && !lane->done;
            ptr[l] = busy ? lane->buf + lane->pos : IDLE_BLOCK;
            stride[l] = busy ? 64 : 0;
            if (busy && (lane->have - lane->pos) / 64 < blocks) blocks = (lane->have - lane->pos) / 64;
        }
        run_lanes(self->sha, self->md5, ptr, stride, blocks, 1, 0);
        for (int l = 0; l < LANES; l++)
            if (stride[l]) self->lane[l].pos += 64 * blocks;
        spent += 64 * (uint64_t)blocks;
    }
}
#endif

/* run(budget) -> [(key, sha256 or None, bytes read, errno), ...] for every lane that ended */
static PyObject *FileLanes_run(FileLanesObject *self, PyObject *args) {
    unsigned long long budget = 0;
    if (!PyArg_ParseTuple(args, "K", &budget)) return NULL;
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "FileLanes is running in another thread");
        return NULL;
    }
    self->busy = 1;
#if HAVE_LANES
    Py_BEGIN_ALLOW_THREADS
    run_files(self, (uint64_t)budget);
    Py_END_ALLOW_THREADS
#endif
    self->busy = 0;
    PyObject *result = PyList_New(0);
    if (!result) return NULL;
    for (int l = 0; l < LANES; l++) {
        file_lane_t *lane = &self->lane[l];
        if (lane->fd < 0 || !lane->done) continue;
        PyObject *sha = lane->err ? Py_NewRef(Py_None) : PyBytes_FromStringAndSize((const char *)lane->sha, 32);
        PyObject *item = sha ? Py_BuildValue("(OOKi)", lane->key, sha, (unsigned long long)lane->total, lane->err)
                             : NULL;
        Py_XDECREF(sha);
        if (!item || PyList_Append(result, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(result);
            return NULL;
        }
        Py_DECREF(item);
        Py_CLEAR(lane->key);
        lane->fd = -1;
    }
    return result;
}

static PyMethodDef FILE_LANES_METHODS[] = {
    {"add", (PyCFunction)FileLanes_add, METH_VARARGS,
     "add(fd, key): hash the open file ``fd`` (from offset 0) in a free lane; the caller keeps the fd."},
    {"free", (PyCFunction)FileLanes_free, METH_NOARGS, "free() -> the number of free lanes"},
    {"run", (PyCFunction)FileLanes_run, METH_VARARGS,
     "run(budget) -> [(key, sha256 | None, bytes read, errno)]: hash until a file ends or ``budget``\n"
     "bytes per lane have passed; the GIL is released meanwhile."},
    {NULL, NULL, 0, NULL}};

static PyTypeObject FileLanesType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "backup._digests.FileLanes",
    .tp_basicsize = sizeof(FileLanesObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "FileLanes(segment=262144): SHA-256 of up to sixteen files at once, read with pread.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)FileLanes_init,
    .tp_dealloc = (destructor)FileLanes_dealloc,
    .tp_methods = FILE_LANES_METHODS,
};

static PyMethodDef METHODS[] = {
    {"digests", (PyCFunction)(void (*)(void))digests, METH_VARARGS | METH_KEYWORDS,
     "digests(buffers, sha256=True, md5=True, lanes=True) -> [(sha256, md5), ...]\n\n"
     "SHA-256 and MD5 of every buffer, sixteen buffers at a time in AVX-512 lanes when the CPU\n"
     "has them; the GIL is released while hashing."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef MODULE = {PyModuleDef_HEAD_INIT, "_digests", NULL, -1, METHODS};

PyMODINIT_FUNC PyInit__digests(void) {
    PyObject *m = PyModule_Create(&MODULE);
    if (!m) return NULL;
    LANES_OK = lanes_supported();
    if (PyModule_AddIntConstant(m, "LANES", LANES_OK ? LANES : 1) < 0 || PyType_Ready(&FileLanesType) < 0 ||
        PyModule_AddObjectRef(m, "FileLanes", (PyObject *)&FileLanesType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
