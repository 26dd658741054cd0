# kv_wal_unit_tests(<prefix> <label> <log library>): the unit tests of the
# log modules (record framing, CRC32C, the WAL, the data directory), built
# against one stage's copy of them. Stage 2 runs them on stage2_wal, stage 3
# on stage3_wal, so a copy that drifts is tested too.
set(KV_WAL_UNIT_DIR ${CMAKE_CURRENT_LIST_DIR})
function(kv_wal_unit_tests prefix label lib)
  foreach(t test_crc32c test_record test_wal test_datadir test_wal_alloc)
    add_executable(${prefix}_${t} ${KV_WAL_UNIT_DIR}/${t}.c)
    target_link_libraries(${prefix}_${t} PRIVATE ${lib} PkgConfig::CMOCKA)
    kv_c_test(${label}.unit.${t} ${prefix}_${t} ${label})
  endforeach()
  # Allocation failure injection: the project's calls to these go through
  # the test's wrappers (test_wal_alloc.c).
  target_link_options(${prefix}_test_wal_alloc PRIVATE
    -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=free)
endfunction()
