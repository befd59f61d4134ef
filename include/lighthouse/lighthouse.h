// The whole public API of Lighthouse.
#pragma once

#include "lighthouse/archive.h"
#include "lighthouse/error.h"
#include "lighthouse/event.h"
#include "lighthouse/event_id.h"
#include "lighthouse/expected_version.h"
#include "lighthouse/faults.h"
#include "lighthouse/health.h"
#include "lighthouse/integrity.h"
#include "lighthouse/options.h"
#include "lighthouse/query.h"
#include "lighthouse/sla.h"
#include "lighthouse/store.h"
#include "lighthouse/subscription.h"
#include "lighthouse/time.h"
#include "lighthouse/tracing.h"
#include "lighthouse/version.h"
