Rails.application.configure do
  config.cache_classes = true
  config.eager_load = false
  config.active_record.dump_schema_after_migration = false
end
