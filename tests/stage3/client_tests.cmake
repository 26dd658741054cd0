# Stage 3 client tests added with the kvclient rework: pipelining under
# failure and the client's resilience (fake server and the real one).
# Included from tests/stage3/CMakeLists.txt after kv_server_proc is defined.
find_package(Threads REQUIRED)
add_library(kv_fake_server STATIC ${CMAKE_CURRENT_LIST_DIR}/fake_server.c)
target_link_libraries(kv_fake_server PUBLIC Threads::Threads)
foreach(t test_kvclient_pipeline test_kvclient_resilience)
  if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/${t}.c)
    add_executable(${t} ${CMAKE_CURRENT_LIST_DIR}/${t}.c)
    target_include_directories(${t} PRIVATE ${CMAKE_CURRENT_LIST_DIR})
    target_link_libraries(${t} PRIVATE kvclient kv_fake_server kv_server_proc PkgConfig::CMOCKA)
    kv_c_test(stage3.${t} ${t} stage3 SERVER stage3-client)
  endif()
endforeach()

# kvcli's output formats (terminal and pipe) against a canned server, flags
# in any order, timeouts. The server target is not used by the script.
kv_py_test(stage3.kvcli_format stage3 ${CMAKE_CURRENT_LIST_DIR}/test_kvcli_format.py stage3-client)
