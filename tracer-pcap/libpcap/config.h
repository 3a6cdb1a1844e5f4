/*
 * config.h for vethtrace's build of libpcap (tracer-pcap/build.rs): the filter compiler, the
 * savefile code and the classic BPF interpreter, without live capture (pcap-null.c), on Linux
 * with glibc or musl. Written by hand in place of CMake's cmakeconfig.h; the strerror_r flavour
 * is passed by build.rs (HAVE_GNU_STRERROR_R for glibc, HAVE_POSIX_STRERROR_R for musl).
 */
#define HAVE_ASPRINTF 1
#define HAVE_VASPRINTF 1
#define HAVE_SNPRINTF 1
#define HAVE_VSNPRINTF 1
#define HAVE_FSEEKO 1
#define HAVE_INTTYPES_H 1
#define HAVE_STDINT_H 1
#define HAVE_STDLIB_H 1
#define HAVE_STRINGS_H 1
#define HAVE_STRING_H 1
#define HAVE_STRTOK_R 1
#define HAVE_SOCKLEN_T 1
#define HAVE_STRUCT_SOCKADDR_STORAGE 1
#define HAVE_SYS_STAT_H 1
#define HAVE_SYS_TYPES_H 1
#define HAVE_UNISTD_H 1
#define HAVE___ATOMIC_LOAD_N 1
#define HAVE___ATOMIC_STORE_N 1
#define INET6 1
#define STDC_HEADERS 1
#define _FILE_OFFSET_BITS 64
#define _LARGEFILE_SOURCE 1
#define PACKAGE_NAME "pcap"
#define PACKAGE_VERSION "1.10.6"
#define PACKAGE_STRING "pcap 1.10.6"
#define SIZEOF_TIME_T 8
