# Writes version_info.cpp (cmake -P, on every build): the git commit of SOURCE_DIR, "-dirty"
# when tracked files differ from it. configure_file rewrites the file only when its text
# changes, so an unchanged commit recompiles nothing.
#   -DSOURCE_DIR= -DINPUT= -DOUTPUT= -DVERSION= -DBUILD_TYPE= -DCUDA= -DSANITIZE=
# Without git (a container build from a context without .git), the environment's
# SHARDWISE_COMMIT names the commit.
set(SHARDWISE_COMMIT unknown)
if(DEFINED ENV{SHARDWISE_COMMIT} AND NOT "$ENV{SHARDWISE_COMMIT}" STREQUAL "")
  set(SHARDWISE_COMMIT $ENV{SHARDWISE_COMMIT})
endif()
find_program(GIT git)
if(GIT AND EXISTS ${SOURCE_DIR}/.git)
  execute_process(COMMAND ${GIT} -C ${SOURCE_DIR} rev-parse --short=12 HEAD
                  OUTPUT_VARIABLE commit OUTPUT_STRIP_TRAILING_WHITESPACE
                  RESULT_VARIABLE rev_parse_failed ERROR_QUIET)
  if(NOT rev_parse_failed)
    set(SHARDWISE_COMMIT ${commit})
    execute_process(COMMAND ${GIT} -C ${SOURCE_DIR} diff --quiet HEAD --
                    RESULT_VARIABLE dirty ERROR_QUIET)
    if(dirty)
      string(APPEND SHARDWISE_COMMIT -dirty)
    endif()
  endif()
endif()
set(SHARDWISE_VERSION ${VERSION})
set(SHARDWISE_BUILD_TYPE ${BUILD_TYPE})
set(SHARDWISE_SANITIZE ${SANITIZE})
if(CUDA)
  set(SHARDWISE_CUDA_BOOL true)
else()
  set(SHARDWISE_CUDA_BOOL false)
endif()
configure_file(${INPUT} ${OUTPUT} @ONLY)
