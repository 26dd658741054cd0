# suite.cmake - the stage-1 protocol suite as a function, so that every later
# stage can re-run the same scripts against its own binary, e.g. in
# tests/stage2/CMakeLists.txt:
#   include(${CMAKE_CURRENT_SOURCE_DIR}/../stage1/suite.cmake)
#   kv_stage1_suite(stage2.stage1 stage2 stage2-wal --data-dir {tmp}/data)
# Extra arguments reach every server the scripts start ("{tmp}" becomes a
# fresh temp dir per server; see tests/harness/kvtest/env.py).
# Included once per directory that uses it (variables are directory-scoped).

# Where the scripts live, captured now: inside the function
# CMAKE_CURRENT_LIST_DIR would name the caller's directory.
set(KV_STAGE1_SUITE_DIR ${CMAKE_CURRENT_LIST_DIR})
set(KV_STAGE1_SUITE_SCRIPTS inline multibulk pipeline concurrency errors shutdown flags real_clients busy_poll)

# kv_stage1_suite(<name prefix> <labels> <server target> [extra server args...])
# registers <prefix>.inline, <prefix>.multibulk, ... with kv_py_test.
function(kv_stage1_suite prefix labels target)
  foreach(script ${KV_STAGE1_SUITE_SCRIPTS})
    kv_py_test(${prefix}.${script} "${labels}" ${KV_STAGE1_SUITE_DIR}/test_${script}.py ${target} ${ARGN})
  endforeach()
endfunction()
