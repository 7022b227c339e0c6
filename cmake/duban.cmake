# Helpers so that each library, service and test is two lines of CMake.

# dub_library(<name> SOURCES <files...> DEPS <targets...>)
# Builds static library dub_<name>; its headers are included as "<name>/x.h".
function(dub_library name)
  cmake_parse_arguments(A "" "" "SOURCES;DEPS" ${ARGN})
  add_library(dub_${name} STATIC ${A_SOURCES})
  target_include_directories(dub_${name} PUBLIC ${CMAKE_SOURCE_DIR}/libs)
  target_link_libraries(dub_${name} PUBLIC ${A_DEPS})
endfunction()

# dub_service(<name> SOURCES <files...> DEPS <targets...>)
# Builds the executable duban-<name> with the service's own directory on the include path,
# linked against jemalloc unless DUBAN_JEMALLOC is off.
function(dub_service name)
  cmake_parse_arguments(A "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(duban-${name} ${A_SOURCES})
  target_include_directories(duban-${name} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  target_link_libraries(duban-${name} PRIVATE ${A_DEPS})
  if(DUBAN_JEMALLOC)
    target_link_libraries(duban-${name} PRIVATE PkgConfig::JEMALLOC)
  endif()
endfunction()

# dub_unit_test(<name> SOURCES <files...> DEPS <targets...>)
# A cmocka test registered with CTest under the label "unit". It runs from the source
# root so that tests can open schemas/ and deploy/config/ by relative path.
function(dub_unit_test name)
  cmake_parse_arguments(A "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(test_${name} ${A_SOURCES})
  target_link_libraries(test_${name} PRIVATE ${A_DEPS} PkgConfig::CMOCKA)
  add_test(NAME ${name} COMMAND test_${name} WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(${name} PROPERTIES LABELS unit TIMEOUT 300)
endfunction()

# dub_domain(<svc> SOURCES <files...> DEPS <targets...>)
# The pure domain logic of a service (no I/O) as static library <svc>_domain, so unit
# tests link it without a broker. Its headers are included by plain name ("clock.h").
function(dub_domain svc)
  cmake_parse_arguments(A "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${svc}_domain STATIC ${A_SOURCES})
  target_include_directories(${svc}_domain PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
  target_link_libraries(${svc}_domain PUBLIC ${A_DEPS})
endfunction()
